"""The queue's task queues: their pending and claimed runs, and the older names for them.

A task queue (``<provisionerId>/<workerType>``) is known while tasks or
workers use it; provisioners and worker types are Taskcluster's deprecated
views of the same queues. Everything here is read from views folded from
the log (``projections/queue/worker_views.py`` and the pending queue).
"""

from __future__ import annotations

from typing import Any

from cairn.api.call import Call, require
from cairn.api.endpoints import Endpoints
from cairn.api.errors import InvalidRequestArguments, ResourceNotFound
from cairn.api.pagination import page
from cairn.api.queue.context import QueueContext
from cairn.api.queue.route_params import GENERIC_ID, PAGED, QUEUE_PARAMS
from cairn.api.queue.tasks import definition_from_row
from cairn.domain.queue import scope_requirements
from cairn.domain.queue.task_queue_id import TaskQueueId
from cairn.domain.timestamps import utcnow

CATEGORY = "Worker Metadata"
PROVISIONER_PARAMS = {"provisionerId": GENERIC_ID}
WORKER_TYPE_PARAMS = {"provisionerId": GENERIC_ID, "workerType": GENERIC_ID}

endpoints = Endpoints()
QueueCall = Call[QueueContext]


def _reads(call: QueueCall) -> Any:
    return call.context.worker_reads


def _listed(row: dict[str, Any]) -> dict[str, Any]:
    """What Taskcluster shows of a provisioner, worker type or task queue it did not describe."""
    return {
        "expires": row["expires"],
        "lastDateActive": row["last_date_active"],
        "description": "",
        "stability": "experimental",
    }


def _provisioner(row: dict[str, Any]) -> dict[str, Any]:
    return {"provisionerId": row["provisioner_id"], **_listed(row)}


def _worker_type(row: dict[str, Any]) -> dict[str, Any]:
    return {**TaskQueueId.parse(row["task_queue_id"]).fields(), **_listed(row)}


def _task_queue(row: dict[str, Any]) -> dict[str, Any]:
    return {"taskQueueId": row["task_queue_id"], **_listed(row)}


def _counts(call: QueueCall, task_queue_id: str) -> dict[str, Any]:
    reads = call.context.reads
    return {
        **TaskQueueId.parse(task_queue_id).fields(),
        "pendingTasks": reads.pending_count(task_queue_id),
        "claimedTasks": reads.claimed_count(task_queue_id),
    }


# provisioners and worker types (deprecated views of task queues)


@endpoints.endpoint(
    "listProvisioners",
    "GET",
    "/provisioners",
    title="Get a list of all active provisioners",
    category=CATEGORY,
    stability="deprecated",
    scopes="queue:list-provisioners",
    output="list-provisioners-response",
    query=PAGED,
)
def list_provisioners(call: QueueCall) -> dict[str, Any]:
    """The provisioners (first halves of live task queue ids), paged."""
    limit, after = page.bounds(call)
    rows = _reads(call).provisioners(utcnow(), after, limit + 1)
    rows, token = page.cut(rows, limit, lambda r: r["provisioner_id"])
    return {"provisioners": [_provisioner(r) for r in rows], **token}


@endpoints.endpoint(
    "getProvisioner",
    "GET",
    "/provisioners/<provisionerId>",
    title="Get an active provisioner",
    category=CATEGORY,
    stability="deprecated",
    scopes="queue:get-provisioner:<provisionerId>",
    output="provisioner-response",
    params=PROVISIONER_PARAMS,
)
def get_provisioner(call: QueueCall) -> dict[str, Any]:
    """A provisioner with a live task queue."""
    provisioner_id = call.params["provisionerId"]
    row = _reads(call).provisioner(provisioner_id, utcnow())
    if row is None:
        raise ResourceNotFound(f"Provisioner `{provisioner_id}` not found. Are you sure it was created?")
    return _provisioner(row)


@endpoints.endpoint(
    "listWorkerTypes",
    "GET",
    "/provisioners/<provisionerId>/worker-types",
    title="Get a list of all active worker-types",
    category=CATEGORY,
    stability="deprecated",
    scopes="queue:list-worker-types:<provisionerId>",
    output="list-workertypes-response",
    query=PAGED,
    params=PROVISIONER_PARAMS,
)
def list_worker_types(call: QueueCall) -> dict[str, Any]:
    """A provisioner's worker types (its live task queues), paged."""
    limit, after = page.bounds(call)
    rows = _reads(call).worker_types(call.params["provisionerId"], utcnow(), after, limit + 1)
    rows, token = page.cut(rows, limit, lambda r: r["worker_type"])
    return {"workerTypes": [_worker_type(r) for r in rows], **token}


@endpoints.endpoint(
    "getWorkerType",
    "GET",
    "/provisioners/<provisionerId>/worker-types/<workerType>",
    title="Get a worker-type",
    category=CATEGORY,
    stability="deprecated",
    scopes="queue:get-worker-type:<provisionerId>/<workerType>",
    output="workertype-response",
    params=WORKER_TYPE_PARAMS,
)
def get_worker_type(call: QueueCall) -> dict[str, Any]:
    """A worker type: the live task queue ``<provisionerId>/<workerType>``."""
    provisioner_id, worker_type = call.params["provisionerId"], call.params["workerType"]
    row = _reads(call).task_queue(str(TaskQueueId(provisioner_id, worker_type)), utcnow())
    if row is None:
        raise ResourceNotFound(
            f"Worker-type `{worker_type}` with Provisioner `{provisioner_id}` not found. "
            "Are you sure it was created?"
        )
    return _worker_type(row)


# task queues: the routes under /task-queues/<taskQueueId>/ come before the
# queue itself, whose id may contain a slash


@endpoints.endpoint(
    "taskQueueCountsBatch",
    "POST",
    "/task-queues/counts",
    title="Get Pending and Claimed Task Counts for Multiple Task Queues",
    category=CATEGORY,
    stability="experimental",
    scopes={
        "for": "taskQueueId",
        "in": "taskQueueIds",
        "each": {"AllOf": ["queue:pending-count:<taskQueueId>", "queue:claimed-count:<taskQueueId>"]},
    },
    input="task-queue-counts-request",
    output="task-queue-counts-list-response",
    deferred_auth=True,
)
def task_queue_counts_batch(call: QueueCall) -> dict[str, Any]:
    """Pending and claimed counts of several task queues; every one must be permitted."""
    ids = call.body["taskQueueIds"]
    require(call.caller, scope_requirements.task_queue_counts_batch(ids))
    call.authorized = True
    return {"taskQueueCounts": [_counts(call, q) for q in ids]}


@endpoints.endpoint(
    "taskQueueCounts",
    "GET",
    "/task-queues/<taskQueueId>/counts",
    title="Get Number of Pending and Claimed Tasks",
    category=CATEGORY,
    scopes={"AllOf": ["queue:pending-count:<taskQueueId>", "queue:claimed-count:<taskQueueId>"]},
    output="task-queue-counts-response",
    greedy=("taskQueueId",),
    params=QUEUE_PARAMS,
)
def task_queue_counts(call: QueueCall) -> dict[str, Any]:
    """How many runs of a task queue are pending, and how many are claimed."""
    return _counts(call, call.params["taskQueueId"])


@endpoints.endpoint(
    "listPendingTasks",
    "GET",
    "/task-queues/<taskQueueId>/pending",
    title="List Pending Tasks",
    category=CATEGORY,
    stability="experimental",
    scopes="queue:pending-list:<taskQueueId>",
    output="list-pending-tasks-response",
    query=PAGED,
    greedy=("taskQueueId",),
    params=QUEUE_PARAMS,
)
def list_pending_tasks(call: QueueCall) -> dict[str, Any]:
    """A task queue's pending runs with their tasks, in the order they became pending."""
    limit, after = page.bounds(call)
    if after and not after.isdigit():
        raise InvalidRequestArguments("continuationToken is not valid")
    rows = _reads(call).pending_tasks(call.params["taskQueueId"], int(after or 0), limit + 1)
    rows, token = page.cut(rows, limit, lambda r: str(r["seq"]))
    tasks = [
        {
            "taskId": r["task_id"],
            "runId": int(r["run_id"]),
            "task": definition_from_row(r),
            "inserted": r["inserted"],
        }
        for r in rows
    ]
    return {"tasks": tasks, **token}


@endpoints.endpoint(
    "listClaimedTasks",
    "GET",
    "/task-queues/<taskQueueId>/claimed",
    title="List claimed Tasks",
    category=CATEGORY,
    stability="experimental",
    scopes="queue:claimed-list:<taskQueueId>",
    output="list-claimed-tasks-response",
    query=PAGED,
    greedy=("taskQueueId",),
    params=QUEUE_PARAMS,
)
def list_claimed_tasks(call: QueueCall) -> dict[str, Any]:
    """A task queue's claimed, unresolved runs with their tasks, oldest claim first."""
    limit, after = page.bounds(call)
    rows = _reads(call).claimed_tasks(call.params["taskQueueId"], page.pair(after, " "), limit + 1)
    rows, token = page.cut(rows, limit, lambda r: f"{r['claimed']} {r['task_id']}")
    tasks = [
        {
            "taskId": r["task_id"],
            "runId": int(r["run_id"]),
            "workerGroup": r["worker_group"],
            "workerId": r["worker_id"],
            "claimed": r["claimed"],
            "task": definition_from_row(r),
        }
        for r in rows
    ]
    return {"tasks": tasks, **token}


@endpoints.endpoint(
    "listTaskQueues",
    "GET",
    "/task-queues",
    title="Get a list of all active task queues",
    category=CATEGORY,
    scopes="queue:list-task-queues",
    output="list-taskqueues-response",
    query=PAGED,
)
def list_task_queues(call: QueueCall) -> dict[str, Any]:
    """The live task queues, paged."""
    limit, after = page.bounds(call)
    rows = _reads(call).task_queues(utcnow(), after, limit + 1)
    rows, token = page.cut(rows, limit, lambda r: r["task_queue_id"])
    return {"taskQueues": [_task_queue(r) for r in rows], **token}


@endpoints.endpoint(
    "getTaskQueue",
    "GET",
    "/task-queues/<taskQueueId>",
    title="Get a task queue",
    category=CATEGORY,
    scopes="queue:get-task-queue:<taskQueueId>",
    output="taskqueue-response",
    greedy=("taskQueueId",),
    params=QUEUE_PARAMS,
)
def get_task_queue(call: QueueCall) -> dict[str, Any]:
    """A live task queue."""
    task_queue_id = call.params["taskQueueId"]
    row = _reads(call).task_queue(task_queue_id, utcnow())
    if row is None:
        raise ResourceNotFound(f"Task queue with `{task_queue_id}` not found. Are you sure it was created?")
    return _task_queue(row)


@endpoints.endpoint(
    "pendingTasks",
    "GET",
    "/pending/<taskQueueId>",
    title="Get Number of Pending Tasks",
    category=CATEGORY,
    stability="deprecated",
    scopes="queue:pending-count:<taskQueueId>",
    output="pending-tasks-response",
    greedy=("taskQueueId",),
    params=QUEUE_PARAMS,
)
def pending_tasks(call: QueueCall) -> dict[str, Any]:
    """How many runs of a task queue are pending (deprecated: use taskQueueCounts)."""
    counts = _counts(call, call.params["taskQueueId"])
    counts.pop("claimedTasks")
    return counts
