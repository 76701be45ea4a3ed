"""Micro-benchmarks for role expansion and scope satisfaction (stdlib only).

    .venv/bin/python bench/bench_scopes.py

Defines 10,000 roles shaped like a GitHub-driven deployment, then times:
building the index (with and without the cycle check), expanding one
client's scopes with a cold and a warm cache, and `satisfies` against a
large expanded scope set.
"""

from __future__ import annotations

import timeit
from collections.abc import Callable

from cairn.domain.auth.roles import RoleIndex
from cairn.domain.auth.scopes import ScopeSet, satisfies

ORGS = 1_500
TEAMS = 40


def ten_thousand_roles() -> dict[str, list[str]]:
    roles: dict[str, list[str]] = {"base": ["queue:ping", "auth:current-scopes"]}
    for t in range(TEAMS):
        roles[f"team:{t}"] = [f"queue:create-task:highest:team-{t}/*", "assume:base"]
    for i in range(ORGS):
        org = f"org{i}"
        roles[f"repo:github.com/{org}/*"] = [
            f"assume:org-member:{org}",
            f"queue:route:index.{org}.<..>",
            f"secrets:get:{org}/<..>/*",
        ]
        roles[f"org-member:{org}"] = [f"assume:team:{i % TEAMS}", f"index:insert-task:{org}.*"]
        roles[f"hook-id:{org}/*"] = [f"assume:repo:github.com/{org}/hooks", "hooks:trigger-hook:<..>"]
        roles[f"repo:github.com/{org}/app:branch:main"] = [f"assume:project-admin:{org}"]
        roles[f"repo:github.com/{org}/app:pull-request"] = [f"queue:scheduler-id:{org}-pr"]
        roles[f"worker-pool:{org}/*"] = ["worker-manager:register-worker:<..>"]
    roles["project-admin:*"] = ["assume:admin-role:project-<..>/*", "secrets:get:project/<..>/*"]
    roles["admin-role:*"] = ["auth:create-role:<..>", "auth:update-role:<..>"]
    while len(roles) < 10_000:
        n = len(roles)
        roles[f"misc:{n}"] = [f"assume:misc:{n - 1}" if n % 7 else "assume:base", f"misc-scope:{n}"]
    return roles


def best_us(fn: Callable[[], object], number: int, repeat: int = 5) -> float:
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6


def main() -> None:
    roles = ten_thousand_roles()
    client = [
        "assume:repo:github.com/org7/app:branch:main",
        "assume:hook-id:org7/*",
        "assume:worker-pool:org7/builder",
        "assume:misc:9990",
        "queue:get-task:*",
    ]
    print(f"{len(roles):,} roles; client has {len(client)} scopes")
    print(f"build index, cycle check      {best_us(lambda: RoleIndex(roles), 1, 3):12,.0f} µs")
    print(f"build index, checked=True     {best_us(lambda: RoleIndex(roles, checked=True), 3):12,.0f} µs")

    indexes = iter([RoleIndex(roles, checked=True) for _ in range(50)])
    cold = best_us(lambda: next(indexes).expand(client), 1, 50)
    warm_index = RoleIndex(roles, checked=True)
    expanded = warm_index.expand(client)
    warm = best_us(lambda: warm_index.expand(client), 2_000)
    print(f"expand one client, cold cache {cold:12,.1f} µs  ({len(expanded)} scopes)")
    print(f"expand one client, warm cache {warm:12,.1f} µs")

    admin_indexes = iter([RoleIndex(roles, checked=True) for _ in range(5)])
    admin = best_us(lambda: next(admin_indexes).expand(["assume:*"]), 1, 5)
    large = RoleIndex(roles, checked=True).expand(["assume:repo:*", "assume:worker-pool:*", "assume:misc:*"])
    print(f"expand assume:*, cold cache   {admin:12,.0f} µs")

    scope_set = ScopeSet(large)
    required = {
        "AllOf": [
            "queue:create-task:highest:team-3/linux",
            {"AnyOf": ["queue:scheduler-id:org1400-pr", "queue:scheduler-id:nope"]},
            "secrets:get:org1234/x/y/z",
            "misc-scope:9500",
        ]
    }
    assert scope_set.satisfies(required)
    print(f"large expanded set            {len(large):12,} scopes")
    print(f"ScopeSet(large set) build     {best_us(lambda: ScopeSet(large), 20):12,.0f} µs")
    print(f"satisfies, prebuilt ScopeSet  {best_us(lambda: scope_set.satisfies(required), 20_000):12,.1f} µs")
    print(f"satisfies, one scope          {best_us(lambda: scope_set.satisfies_scope('misc-scope:9500'), 50_000):12,.2f} µs")
    print(f"satisfies, plain list         {best_us(lambda: satisfies(large, required), 20):12,.0f} µs")


if __name__ == "__main__":
    main()
