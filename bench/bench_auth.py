"""Authentication and authorization of one request, with 10,000 roles defined.

Measures, in one process, what the API does per request before a handler
runs: verify a Hawk header (MAC, timestamp, nonce), expand the caller's scopes through the role index
(cached, as between requests), and check an endpoint's scope expression.

    .venv/bin/python bench/bench_auth.py
"""

from __future__ import annotations

import itertools
import time
from datetime import datetime, timedelta, timezone

import mohawk
import taskcluster

from cairn.api.hawk import HawkAuthenticator, HawkRequest
from cairn.domain.auth.credentials import ClientRecord
from cairn.domain.auth.roles import RoleIndex
from cairn.domain.auth.scope_templates import ScopeTemplate
from cairn.domain.auth.scopes import satisfies

ROLES = 10_000
REQUESTS = 5_000


def roles() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for i in range(ROLES):
        found[f"repo:github.com/org{i}/*"] = [f"queue:create-task:highest:proj-{i}/*", f"secrets:get:org{i}/<..>"]
    for i in range(0, ROLES, 10):
        found[f"project:team{i}"] = [f"assume:repo:github.com/org{i}/main", "queue:claim-work:proj-*"]
    found["anonymous"] = ["queue:get-task:*", "queue:status:*"]
    return found


def signed_requests(client_id: str, token: str) -> list[HawkRequest]:
    """Real Hawk Authorization headers, each with its own nonce."""
    made = []
    for i in range(REQUESTS):
        route = f"/api/queue/v1/claim-work/proj-{i % 7}/linux"
        sender = mohawk.Sender(
            {"id": client_id, "key": token, "algorithm": "sha256"},
            f"http://127.0.0.1:8080{route}", "POST", content="", content_type="",
            always_hash_content=False,
        )
        made.append(HawkRequest("POST", route, "127.0.0.1", 8080, sender.request_header))
    return made


def main() -> None:
    index = RoleIndex(roles())
    token = taskcluster.slugId() + taskcluster.slugId()
    client = ClientRecord(
        "project/ci",
        token,
        index.expand(["assume:project:team10", "assume:repo:github.com/org42/*"]),
        datetime.now(timezone.utc) + timedelta(days=1),
    )
    authenticator = HawkAuthenticator(lambda cid: client if cid == client.client_id else None, index.expand, satisfies)
    template = ScopeTemplate(
        {"AllOf": ["queue:claim-work:<taskQueueId>", "queue:worker-id:<workerGroup>/<workerId>"]}
    )
    requests = signed_requests(client.client_id, token)
    for request in requests[:50]:
        authenticator.authenticate(request)

    fresh = itertools.islice(requests, 50, None)
    started = time.perf_counter()
    done = 0
    for request in fresh:
        result = authenticator.authenticate(request)
        required = template.render({"taskQueueId": "proj-3/linux", "workerGroup": "g", "workerId": "w"})
        satisfies(result.scopes, required)
        done += 1
    per_request = (time.perf_counter() - started) / done
    print(f"{ROLES:,} roles; the caller's expanded scopes: {len(client.scopes)}")
    print(f"authenticate + authorize one request: {per_request * 1e6:,.1f} µs (over {done:,} requests)")
    started = time.perf_counter()
    RoleIndex(roles(), checked=True).expand(["assume:project:team10", "assume:repo:github.com/org42/*"])
    print(f"expand one client's scopes, cold index: {(time.perf_counter() - started) * 1e3:,.1f} ms (incl. building the index)")


if __name__ == "__main__":
    main()
