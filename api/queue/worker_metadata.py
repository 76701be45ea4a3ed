"""The queue's workers: listed, described, quarantined and declared.

What a worker did (its claims, its recent runs) is read from views folded
from task events (``projections/queue/worker_views.py``); what is said about
it — a quarantine, a declaration — is a command on its Worker aggregate.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from cairn.api.call import Call
from cairn.api.endpoints import Endpoints
from cairn.api.errors import InputValidationError, InvalidRequestArguments, ResourceNotFound
from cairn.api.pagination import page
from cairn.api.queue.context import QueueContext
from cairn.api.queue.route_params import GENERIC_ID, PAGED, TASK_QUEUE_WORKER_TYPE
from cairn.api.queue.task_queues import CATEGORY, WORKER_TYPE_PARAMS
from cairn.domain.queue import scope_requirements
from cairn.domain.queue.task_queue_id import TaskQueueId
from cairn.domain.timestamps import parse_time, utcnow

WORKER_PARAMS = {**WORKER_TYPE_PARAMS, "workerGroup": GENERIC_ID, "workerId": GENERIC_ID}
DECLARED_WORKER_PARAMS = {**WORKER_PARAMS, "workerType": TASK_QUEUE_WORKER_TYPE}

endpoints = Endpoints()
QueueCall = Call[QueueContext]


def _reads(call: QueueCall) -> Any:
    return call.context.worker_reads


def _time(value: str, field: str) -> datetime:
    try:
        return parse_time(value)
    except ValueError:
        raise InputValidationError(f"{field} must be a date-time, not {value!r}") from None


def _worker(call: QueueCall, row: dict[str, Any]) -> dict[str, Any]:
    key = (row["task_queue_id"], row["worker_group"], row["worker_id"])
    body = {
        **TaskQueueId.parse(row["task_queue_id"]).fields(),
        "workerGroup": row["worker_group"],
        "workerId": row["worker_id"],
        "recentTasks": _reads(call).recent_tasks(*key),
        "expires": row["expires"],
        "firstClaim": row["first_claim"],
        "lastDateActive": row["last_date_active"],
    }
    if row["quarantine_until"]:
        body["quarantineUntil"] = row["quarantine_until"]
    details = orjson.loads(row["quarantine_details"])
    if details:
        body["quarantineDetails"] = details
    return body


def _worker_not_found(params: dict[str, str]) -> ResourceNotFound:
    return ResourceNotFound(
        f"Worker with workerId `{params['workerId']}`, workerGroup `{params['workerGroup']}`, "
        f"worker-type `{params['workerType']}` and provisionerId `{params['provisionerId']}` not found. "
        "Are you sure it was created?"
    )



# workers


@endpoints.endpoint(
    "listWorkers",
    "GET",
    "/provisioners/<provisionerId>/worker-types/<workerType>/workers",
    title="Get a list of all active workers of a workerType",
    category=CATEGORY,
    stability="deprecated",
    scopes="queue:list-workers:<provisionerId>/<workerType>",
    output="list-workers-response",
    query=(*PAGED, "quarantined"),
    params=WORKER_TYPE_PARAMS,
)
def list_workers(call: QueueCall) -> dict[str, Any]:
    """The live workers of a worker type, paged; ``quarantined=true|false`` filters them."""
    quarantined = call.query.get("quarantined")
    if quarantined not in (None, "true", "false"):
        raise InvalidRequestArguments("quarantined must be true or false")
    limit, after = page.bounds(call)
    now = utcnow()
    task_queue_id = str(TaskQueueId(call.params["provisionerId"], call.params["workerType"]))
    rows = _reads(call).workers(task_queue_id, quarantined or "any", now, page.pair(after, "/"), limit + 1)
    rows, token = page.cut(rows, limit, lambda r: f"{r['worker_group']}/{r['worker_id']}")
    workers = []
    for r in rows:
        entry: dict[str, Any] = {
            "workerGroup": r["worker_group"],
            "workerId": r["worker_id"],
            "firstClaim": r["first_claim"],
            "lastDateActive": r["last_date_active"],
        }
        if r["latest_task_id"] is not None:
            entry["latestTask"] = {"taskId": r["latest_task_id"], "runId": int(r["latest_run_id"])}
        if r["quarantine_until"] and parse_time(r["quarantine_until"]) > now:
            entry["quarantineUntil"] = r["quarantine_until"]
        workers.append(entry)
    return {"workers": workers, **token}


@endpoints.endpoint(
    "getWorker",
    "GET",
    "/provisioners/<provisionerId>/worker-types/<workerType>/workers/<workerGroup>/<workerId>",
    title="Get a worker from worker-type",
    category=CATEGORY,
    stability="deprecated",
    scopes="queue:get-worker:<provisionerId>/<workerType>/<workerGroup>/<workerId>",
    output="worker-response",
    params=WORKER_PARAMS,
)
def get_worker(call: QueueCall) -> dict[str, Any]:
    """A worker: its recent runs, expiry, first claim, activity and quarantine.

    A worker is not forgotten while it is quarantined, even past its expiry.
    """
    p = call.params
    now = utcnow()
    task_queue_id = str(TaskQueueId(p["provisionerId"], p["workerType"]))
    reads = _reads(call)
    row = reads.worker_row(task_queue_id, p["workerGroup"], p["workerId"])
    live = row is not None and (
        parse_time(row["expires"]) > now
        or (row["quarantine_until"] is not None and parse_time(row["quarantine_until"]) > now)
    )
    if not live or reads.task_queue(task_queue_id, now) is None:
        raise _worker_not_found(p)
    return _worker(call, row)


@endpoints.endpoint(
    "quarantineWorker",
    "PUT",
    "/provisioners/<provisionerId>/worker-types/<workerType>/workers/<workerGroup>/<workerId>",
    title="Quarantine a worker",
    category=CATEGORY,
    stability="experimental",
    scopes={"AllOf": ["queue:quarantine-worker:<provisionerId>/<workerType>/<workerGroup>/<workerId>"]},
    input="quarantine-worker-request",
    output="worker-response",
    params=WORKER_PARAMS,
)
def quarantine_worker(call: QueueCall) -> dict[str, Any]:
    """Quarantine a known worker until a time: it claims nothing until then.

    A time now or in the past lifts the quarantine. Every change is kept in the
    worker's quarantine history, with who made it and why.
    """
    p = call.params
    task_queue_id = str(TaskQueueId(p["provisionerId"], p["workerType"]))
    until = _time(call.body["quarantineUntil"], "quarantineUntil")
    reason = call.body.get("quarantineInfo", "")
    call.context.workers.quarantine(task_queue_id, p["workerGroup"], p["workerId"], until, reason)
    row = _reads(call).worker_row(task_queue_id, p["workerGroup"], p["workerId"])
    if row is None:
        raise _worker_not_found(p)
    return _worker(call, row)


@endpoints.endpoint(
    "declareWorker",
    "PUT",
    "/provisioners/<provisionerId>/worker-types/<workerType>/<workerGroup>/<workerId>",
    title="Declare a worker",
    category=CATEGORY,
    stability="experimental",
    scopes={
        "AllOf": [
            {
                "for": "property",
                "in": "properties",
                "each": "queue:declare-worker:<provisionerId>/<workerType>/<workerGroup>/<workerId>#<property>",
            }
        ]
    },
    scope_params=lambda params, body: scope_requirements.declare_worker(body),
    input="update-worker-request",
    output="worker-response",
    params=DECLARED_WORKER_PARAMS,
)
def declare_worker(call: QueueCall) -> dict[str, Any]:
    """Declare a worker, making it and its task queue known until ``expires``.

    The caller needs ``queue:declare-worker:<...>#<property>`` for each
    property it sets.
    """
    p = call.params
    task_queue_id = str(TaskQueueId(p["provisionerId"], p["workerType"]))
    expires = _time(call.body["expires"], "expires")
    call.context.workers.declare(task_queue_id, p["workerGroup"], p["workerId"], expires)
    row = _reads(call).worker_row(task_queue_id, p["workerGroup"], p["workerId"])
    if row is None:
        raise _worker_not_found(p)
    return _worker(call, row)
