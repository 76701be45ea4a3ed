"""The purge-cache service: requests that a worker pool's workers purge caches of a name.

As Taskcluster's: ``purgeCache`` records a request (again: its ``before``
moves to now), ``purgeRequests`` lists a pool's open requests (those made at
or after ``since``), ``allPurgeRequests`` every pool's, a page at a time.
Each request is an event in the log, and a Pulse message on
``exchange/taskcluster-purge-cache/v1/purge-cache`` that workers follow on
the event stream; a request lapses a day after it was last made.
"""

from __future__ import annotations

from typing import Any

from cairn.api.call import Call
from cairn.api.endpoints import Service
from cairn.api.errors import InvalidRequestArguments
from cairn.api.pagination import page
from cairn.api.purge_cache.context import PurgeCacheContext
from cairn.domain.timestamps import FIRST, iso, parse_time, utcnow

purge_cache = Service(
    name="purge-cache",
    title="Purge Cache Service",
    description=(
        "The purge-cache service is responsible for tracking cache-purge requests.\n\n"
        "Users create purge requests for specific caches on specific workers, and these requests are "
        "timestamped. Workers consult the service (or follow its messages on the event stream) before "
        "starting a new task, and purge any caches older than the timestamp."
    ),
)

IDENTIFIER = r"[A-Za-z0-9_-]{1,38}"
POOL: dict[str, Any] = {"greedy": ("workerPoolId",), "params": {"workerPoolId": f"{IDENTIFIER}/{IDENTIFIER}"}}
#: The key of an allPurgeRequests page: a worker pool id holds no colon.
SEPARATOR = ":"


def _entry(row: dict[str, str]) -> dict[str, str]:
    provisioner_id, worker_type = row["worker_pool_id"].split("/", 1)
    return {
        "provisionerId": provisioner_id,
        "workerType": worker_type,
        "cacheName": row["cache_name"],
        "before": row["purge_before"],
    }


@purge_cache.endpoint(
    "allPurgeRequests", "GET", "/purge-cache/list", title="All Open Purge Requests",
    category="Purge-Cache Service", scopes="purge-cache:all-purge-requests",
    output="all-purge-cache-request-list", query=("continuationToken", "limit"),
)
def all_purge_requests(call: Call[PurgeCacheContext]) -> dict[str, Any]:
    """View all open purge requests, for administrators; workers use ``purgeRequests``."""
    limit, after = page.bounds(call)
    rows = call.context.reads.all(iso(utcnow()), page.pair(after, SEPARATOR), limit + 1)
    rows, more = page.cut(rows, limit, lambda row: f"{row['worker_pool_id']}{SEPARATOR}{row['cache_name']}")
    return {"requests": [_entry(row) for row in rows], **more}


@purge_cache.endpoint(
    "purgeCache", "POST", "/purge-cache/<workerPoolId>", title="Purge Worker Cache",
    category="Purge-Cache Service", scopes="purge-cache:<workerPoolId>:<cacheName>",
    input="purge-cache-request", **POOL,
)
def purge_worker_cache(call: Call[PurgeCacheContext]) -> None:
    """Ask the workers of ``workerPoolId`` to purge caches named ``cacheName``; asked again, ``before`` moves to now."""
    call.context.service.purge(call.params["workerPoolId"], call.body["cacheName"], utcnow())
    return None


@purge_cache.endpoint(
    "purgeRequests", "GET", "/purge-cache/<workerPoolId>", title="Open Purge Requests for a worker pool",
    category="Purge-Cache Service", scopes="purge-cache:purge-requests::<workerPoolId>",
    output="purge-cache-request-list", query=("since",), **POOL,
)
def purge_requests(call: Call[PurgeCacheContext]) -> dict[str, Any]:
    """The pool's open purge requests made at or after ``since``: caches older than ``before`` must go."""
    since = call.query.get("since")
    try:
        moment = parse_time(since) if since else FIRST
    except ValueError:
        raise InvalidRequestArguments(f"since={since[:64]!r} is not a date and time") from None
    rows = call.context.reads.of_pool(call.params["workerPoolId"], iso(utcnow()), iso(moment))
    return {"requests": [_entry(row) for row in rows]}
