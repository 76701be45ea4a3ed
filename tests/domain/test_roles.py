import random

import pytest

from cairn.domain.auth import roles as roles_module
from cairn.domain.auth.roles import (
    DependencyCycleError,
    InvalidScopeError,
    RoleIndex,
    assumed_role_pattern,
    check_roles,
)
from cairn.domain.auth.scopes import normalize_scopes

ERRORS = {"DependencyCycleError": DependencyCycleError, "InvalidScopeError": InvalidScopeError}


def as_mapping(roles: list[dict]) -> dict[str, list[str]]:
    return {role["roleId"]: role["scopes"] for role in roles}


@pytest.mark.vectors("role_expansion.json", "cases")
def test_expansion(case):
    index = RoleIndex(as_mapping(case["roles"]))
    assert index.expand(case["input"]) == case["expected"]
    assert index.expand(case["input"]) == case["expected"]  # from the cache


@pytest.mark.vectors("role_validation.json", "cases")
def test_validation(case):
    roles = as_mapping(case["roles"])
    if case["expected_error"] is None:
        check_roles(roles)
        return
    with pytest.raises(ERRORS[case["expected_error"]]) as raised:
        check_roles(roles)
    assert str(raised.value) == case["error_message"]


# -- an independent, slow reading of the semantics, to compare against ---------


def naive_expand(roles: dict[str, list[str]], scopes: list[str]) -> list[str]:
    def fill(scope: str, parameter: str) -> str:
        if "<..>" not in scope:
            return scope
        before, after = scope.split("<..>", 1)
        return before + parameter if parameter.endswith("*") else before + parameter + after

    def granted_by(pattern: str):
        for role_id, role_scopes in roles.items():
            prefix_role = role_id.endswith("*")
            stem = role_id[:-1] if prefix_role else role_id
            if pattern.endswith("*") and stem.startswith(pattern[:-1]):
                parameter = "*"
            elif prefix_role and pattern.startswith(stem):
                parameter = pattern[len(stem):]
            elif not prefix_role and pattern == stem:
                parameter = None
            else:
                continue
            for scope in role_scopes:
                yield fill(scope, parameter) if prefix_role else scope

    result, frontier = set(scopes), list(scopes)
    while frontier:
        scope = frontier.pop()
        if scope.startswith("assume:"):
            pattern = scope[len("assume:"):]
        elif scope in {"*", "a*", "as*", "ass*", "assu*", "assum*", "assume*"}:
            pattern = "*"
        else:
            continue
        for granted in granted_by(pattern):
            if granted not in result:
                result.add(granted)
                frontier.append(granted)
    return normalize_scopes(result)


def random_roles(rng: random.Random) -> dict[str, list[str]]:
    def word() -> str:
        return "".join(rng.choice("ab") for _ in range(rng.randint(0, 3)))

    def scope() -> str:
        body = word() + rng.choice(["", "", "<..>", "<..>" + word()])
        return rng.choice(["assume:", "assume:", "X", "assume:" + word()]) + body + rng.choice(["", "*"])

    return {word() + rng.choice(["", "*"]): [scope() for _ in range(rng.randint(0, 3))] for _ in range(6)}


def test_expansion_agrees_with_a_naive_fixed_point_on_random_role_sets():
    rng = random.Random(20240601)
    compared = 0
    while compared < 300:
        roles = random_roles(rng)
        try:
            check_roles(roles)
        except (DependencyCycleError, InvalidScopeError):
            continue
        index = RoleIndex(roles)
        inputs = ["*", "assume:*", "assume:a*", "assume:ab", "assume:b", "assume:", "assume:ba*"]
        for given in [[s] for s in inputs] + [rng.sample(inputs, 2)]:
            assert index.expand(given) == naive_expand(roles, given), (roles, given)
        compared += 1


def test_a_remembered_expansion_is_the_expansion_and_a_list_of_the_callers_own():
    roles = {"a": ["assume:b", "x"], "b": ["y*", "y1"], "c*": ["z:<..>"]}
    index, fresh = RoleIndex(roles), RoleIndex(roles, cache_size=0)
    asked = ["assume:a", "assume:c9", "w"]
    first = index.expand(asked)
    assert first == fresh.expand(asked) == ["assume:a", "assume:b", "assume:c9", "w", "x", "y*", "z:9"]
    first.append("changed by the caller")
    asked.append("changed too")
    again = index.expand(["assume:a", "assume:c9", "w"])
    assert again == fresh.expand(["assume:a", "assume:c9", "w"])
    again.clear()
    assert index.expand(("assume:a", "assume:c9", "w")) == fresh.expand(["assume:a", "assume:c9", "w"])
    assert index.expand(iter(["assume:c9", "w", "assume:a"])) == fresh.expand(["assume:a", "assume:c9", "w"])


def test_remembered_expansions_hold_a_bounded_number_of_scopes(monkeypatch):
    monkeypatch.setattr(roles_module, "RESULT_SCOPES_HELD", 100)
    index = RoleIndex({"many": [f"s{n}" for n in range(5)]})
    large = ["assume:many", *(f"big{n}" for n in range(4))]  # 5 asked + 10 granted: over a tenth, never kept
    assert index.expand(large) == sorted([*large, *(f"s{n}" for n in range(5))])
    assert index._results == {}
    for n in range(30):  # 2 asked + 7 granted: 11 fit in 100, the 12th starts again
        asked = ["assume:many", f"t{n:02}"]
        assert index.expand(asked) == ["assume:many", *(f"s{m}" for m in range(5)), f"t{n:02}"]
        assert index._results_held == 9 * len(index._results) <= 100
    assert len(index._results) == 30 % 11
    assert index.expand(["assume:many", "t29"]) == ["assume:many", *(f"s{m}" for m in range(5)), "t29"]
    uncached = RoleIndex({"a": ["b"]}, cache_size=0)
    assert uncached.expand(["assume:a"]) == ["assume:a", "b"]
    assert uncached._results == {}


# -- edge cases beyond the vectors ---------------------------------------------


@pytest.mark.parametrize(
    "scope, pattern",
    [
        ("assume:x", "x"),
        ("assume:", ""),
        ("assume:x*", "x*"),
        ("*", "*"),
        ("assum*", "*"),
        ("assume*", "*"),
        ("assume", None),
        ("assumed:x", None),
        (":*", None),
        ("b*", None),
    ],
)
def test_assumed_role_pattern(scope, pattern):
    assert assumed_role_pattern(scope) == pattern


def test_parameter_is_not_substituted_in_exact_roles():
    index = RoleIndex({"a": ["B<..>"]})
    assert index.expand(["assume:a"]) == ["B<..>", "assume:a"]


def test_empty_parameter_fills_with_nothing():
    index = RoleIndex({"repo:*": ["secrets:get:<..>/x"]})
    assert index.expand(["assume:repo:"]) == ["assume:repo:", "secrets:get:/x"]


def test_no_assume_scopes_is_just_normalization():
    assert RoleIndex({"a": ["A"]}).expand(["x*", "b", "xy"]) == ["b", "x*"]
    assert RoleIndex({"a": ["A"]}).expand(["a*"]) == ["A", "a*"]


def test_cycle_error_carries_the_cycle():
    with pytest.raises(DependencyCycleError) as raised:
        check_roles({"x": ["assume:y"], "y": ["assume:x*"]})
    assert raised.value.cycle == ["assume:x", "assume:y", "assume:x"]


def test_error_docstrings_are_default_messages():
    assert str(InvalidScopeError()) == InvalidScopeError.__doc__


def test_invalid_parameterized_scope_carries_the_scope():
    with pytest.raises(InvalidScopeError) as raised:
        check_roles({"a*": ["ok", "b*<..>"]})
    assert raised.value.scope == "b*<..>"


def test_literal_double_parameter_in_exact_role_is_allowed():
    check_roles({"a": ["b<..>c<..>"]})


# -- a realistic deployment of 10,000 roles -------------------------------------

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


@pytest.fixture(scope="module")
def big_roles() -> dict[str, list[str]]:
    return ten_thousand_roles()


@pytest.fixture(scope="module")
def big_index(big_roles) -> RoleIndex:
    return RoleIndex(big_roles)


def test_ten_thousand_roles_are_valid(big_roles):
    assert len(big_roles) == 10_000
    check_roles(big_roles)


def test_ten_thousand_roles_branch_push(big_index):
    assert big_index.expand(["assume:repo:github.com/org7/app:branch:main"]) == [
        "assume:admin-role:project-org7/*",
        "assume:base",
        "assume:org-member:org7",
        "assume:project-admin:org7",
        "assume:repo:github.com/org7/app:branch:main",
        "assume:team:7",
        "auth:create-role:project-org7/*",
        "auth:current-scopes",
        "auth:update-role:project-org7/*",
        "index:insert-task:org7.*",
        "queue:create-task:highest:team-7/*",
        "queue:ping",
        "queue:route:index.org7.app:branch:main",
        "secrets:get:org7/app:branch:main/*",
        "secrets:get:project/org7/*",
    ]


def test_ten_thousand_roles_star_input(big_index):
    expanded = big_index.expand(["assume:hook-id:org12*"])
    assert "hooks:trigger-hook:*" in expanded
    assert "queue:route:index.org12.hooks" in expanded
    assert "assume:repo:github.com/org12/hooks" in expanded
    assert "assume:hook-id:org12/x" not in expanded


@pytest.mark.parametrize(
    "given",
    [
        ["assume:repo:github.com/org42/app:pull-request"],
        ["assume:hook-id:org3/nightly", "assume:worker-pool:org3/*"],
        ["assume:misc:9999"],
        ["assume:repo:github.com/org149*"],
        ["assume:team:*", "other"],
    ],
)
def test_ten_thousand_roles_agree_with_the_naive_fixed_point(big_roles, big_index, given):
    assert big_index.expand(given) == naive_expand(big_roles, given)


def test_ten_thousand_roles_assume_everything(big_roles, big_index):
    expanded = big_index.expand(["assume:*"])
    assert expanded[0] == "assume:*"
    assert not any(s.startswith("assume:") for s in expanded[1:])
    assert "auth:create-role:*" in expanded
    assert f"misc-scope:{len(big_roles) - 1}" in expanded
