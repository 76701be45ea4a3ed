"""The queue service: tasks, runs, task groups and the worker interface."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import orjson

from cairn.api.call import Call
from cairn.api.endpoints import Service
from cairn.api.errors import ResourceNotFound
from cairn.api.pagination import page
from cairn.api.request_threads import in_request_thread
from cairn.consumers.pending_signal import FALLBACK_RECHECK
from cairn.domain.auth.credentials import create_temporary_credentials
from cairn.domain.queue.task import PRIORITIES, Task
from cairn.domain.timestamps import iso, parse_time, utcnow

SLUGID = r"[A-Za-z0-9_-]{8}[Q-T][A-Za-z0-9_-][CGKOSWaeimquy26-][A-Za-z0-9_-]{10}[AQgw]"
TASK_QUEUE_ID = r"[a-zA-Z0-9-_]{1,38}/[a-z]([-a-z0-9]{0,36}[a-z0-9])?"
RUN_ID = r"[0-9]{1,3}"
CLAIM_WAIT_SECONDS = 20.0

queue = Service(
    name="queue",
    title="Queue API",
    description=(
        "The queue keeps tasks, their runs and task groups, and hands pending work to "
        "workers. Every change is an event in Cairn's log; the pending queues and "
        "dependency waits are views kept in the same transaction as those events."
    ),
)

TASK_PARAMS = {"taskId": SLUGID}
RUN_PARAMS = {"taskId": SLUGID, "runId": RUN_ID}


def definition_of(task: Task) -> dict[str, Any]:
    d = task.current_definition()
    provisioner_id, worker_type = d["taskQueueId"].split("/", 1)
    return {"provisionerId": provisioner_id, "workerType": worker_type, **d}


def definition_from_row(row: dict[str, Any]) -> dict[str, Any]:
    d = orjson.loads(row["definition"])
    provisioner_id, worker_type = d["taskQueueId"].split("/", 1)
    return {"provisionerId": provisioner_id, "workerType": worker_type, **d}


def _service(call: Call) -> Any:
    return call.runtime.queue


def _task_scope_params(task: Task) -> dict[str, Any]:
    d = task.definition
    return {
        "taskId": task.task_id,
        "schedulerId": d["schedulerId"],
        "taskGroupId": d["taskGroupId"],
        "projectId": d["projectId"],
        "taskQueueId": d["taskQueueId"],
    }



# tasks


@queue.endpoint(
    "task",
    "GET",
    "/task/<taskId>",
    title="Get Task Definition",
    category="Tasks",
    scopes="queue:get-task:<taskId>",
    output="task",
    params=TASK_PARAMS,
)
def get_task(call: Call) -> dict[str, Any]:
    """The task definition, as created (with defaults filled in)."""
    return definition_of(_service(call).task(call.params["taskId"]))


@queue.endpoint(
    "status",
    "GET",
    "/task/<taskId>/status",
    title="Get task status",
    category="Tasks",
    scopes="queue:status:<taskId>",
    output="task-status-response",
    params=TASK_PARAMS,
)
def get_status(call: Call) -> dict[str, Any]:
    """The status of a task and its runs."""
    return {"status": _service(call).task(call.params["taskId"]).status()}


@queue.endpoint(
    "createTask",
    "PUT",
    "/task/<taskId>",
    title="Create New Task",
    category="Tasks",
    scopes={
        "AllOf": [
            {"for": "scope", "in": "scopes", "each": "<scope>"},
            {"for": "route", "in": "routes", "each": "queue:route:<route>"},
            "queue:create-task:project:<projectId>",
            "queue:scheduler-id:<schedulerId>",
            {
                "AnyOf": [
                    {
                        "for": "priority",
                        "in": "priorities",
                        "each": "queue:create-task:<priority>:<provisionerId>/<workerType>",
                    }
                ]
            },
        ]
    },
    input="create-task-request",
    output="task-status-response",
    params=TASK_PARAMS,
    deferred_auth=True,
)
def create_task(call: Call) -> dict[str, Any]:
    """Create a task; repeating the same definition returns the current status.

    The caller needs every scope the task carries, ``queue:route:<route>`` for
    each route, and the project, scheduler and priority scopes for the queue.
    """
    body = dict(call.body)
    task_id = call.params["taskId"]
    queue_id = body.get("taskQueueId")
    provisioner_id, worker_type = body.get("provisionerId"), body.get("workerType")
    if queue_id and not (provisioner_id and worker_type):
        provisioner_id, worker_type = queue_id.split("/", 1)
    priority = body.get("priority", "lowest")
    priority = "lowest" if priority == "normal" else priority
    call.authorize(
        taskId=task_id,
        priorities=list(PRIORITIES[: PRIORITIES.index(priority) + 1]),
        routes=body.get("routes", []),
        scopes=body.get("scopes", []),
        schedulerId=body.get("schedulerId", "-"),
        projectId=body.get("projectId") or "none",
        taskGroupId=body.get("taskGroupId", task_id),
        provisionerId=provisioner_id or "",
        workerType=worker_type or "",
        taskQueueId=queue_id or f"{provisioner_id}/{worker_type}",
    )
    task = _service(call).define_task(task_id, body, utcnow())
    return {"status": task.status()}


def _task_command(call: Call, command: str) -> dict[str, Any]:
    service = _service(call)
    task = service.task(call.params["taskId"])
    call.authorize(**_task_scope_params(task))
    task = getattr(service, command)(call.params["taskId"], utcnow())
    return {"status": task.status()}


def _scheduler_scopes(verb: str) -> dict[str, Any]:
    return {
        "AnyOf": [
            f"queue:{verb}-task:<schedulerId>/<taskGroupId>/<taskId>",
            f"queue:{verb}-task-in-project:<projectId>",
            {"AllOf": [f"queue:{verb}-task", "assume:scheduler-id:<schedulerId>/<taskGroupId>"]},
        ]
    }


@queue.endpoint(
    "scheduleTask",
    "POST",
    "/task/<taskId>/schedule",
    title="Schedule Defined Task",
    category="Tasks",
    scopes=_scheduler_scopes("schedule"),
    output="task-status-response",
    params=TASK_PARAMS,
    deferred_auth=True,
)
def schedule_task(call: Call) -> dict[str, Any]:
    """Schedule an unscheduled task now, whatever its dependencies; idempotent."""
    return _task_command(call, "schedule_task")


@queue.endpoint(
    "rerunTask",
    "POST",
    "/task/<taskId>/rerun",
    title="Rerun a Resolved Task",
    category="Tasks",
    scopes=_scheduler_scopes("rerun"),
    output="task-status-response",
    params=TASK_PARAMS,
    deferred_auth=True,
)
def rerun_task(call: Call) -> dict[str, Any]:
    """Add a new pending run to a resolved task; a pending or running task is left as it is."""
    return _task_command(call, "rerun_task")


@queue.endpoint(
    "cancelTask",
    "POST",
    "/task/<taskId>/cancel",
    title="Cancel Task",
    category="Tasks",
    scopes=_scheduler_scopes("cancel"),
    output="task-status-response",
    params=TASK_PARAMS,
    deferred_auth=True,
)
def cancel_task(call: Call) -> dict[str, Any]:
    """Resolve an unscheduled, pending or running task as exception/canceled; idempotent."""
    service = _service(call)
    task = service.task(call.params["taskId"])
    call.authorize(**_task_scope_params(task))
    now = utcnow()
    if now >= task.deadline:
        from cairn.domain.errors import Conflict

        raise Conflict(f"Task {task.task_id} can't be canceled past its deadline of {task.definition['deadline']}")
    return {"status": service.cancel_task(task.task_id, now).status()}


@queue.endpoint(
    "changeTaskPriority",
    "POST",
    "/task/<taskId>/priority",
    title="Change Task Priority",
    category="Tasks",
    stability="experimental",
    scopes={
        "AnyOf": [
            "queue:change-task-priority:<taskId>",
            "queue:change-task-priority-in-queue:<taskQueueId>",
        ]
    },
    input="change-task-priority-request",
    output="task-status-response",
    params=TASK_PARAMS,
    deferred_auth=True,
)
def change_task_priority(call: Call) -> dict[str, Any]:
    """Change the priority of a task; a pending run moves in its queue at once."""
    service = _service(call)
    task = service.task(call.params["taskId"])
    call.authorize(**_task_scope_params(task))
    return {"status": service.change_priority(task.task_id, call.body["newPriority"]).status()}


@queue.endpoint(
    "tasks",
    "POST",
    "/tasks",
    title="Get Multiple Task Definitions",
    category="Tasks",
    stability="experimental",
    scopes={"AllOf": [{"for": "taskId", "in": "taskIds", "each": "queue:get-task:<taskId>"}]},
    input="tasks-request",
    output="tasks-response",
    query=("continuationToken", "limit"),
    deferred_auth=True,
)
def get_tasks(call: Call) -> dict[str, Any]:
    """The definitions of several tasks; unknown ids are left out."""
    ids, rows = _known_tasks(call)
    chunk, token = page(call, ids, key=lambda t: t)
    return {"tasks": [{"taskId": t, "task": definition_from_row(rows[t])} for t in chunk], **token}


@queue.endpoint(
    "statuses",
    "POST",
    "/tasks/status",
    title="Get Multiple Task Statuses",
    category="Tasks",
    stability="experimental",
    scopes={"AllOf": [{"for": "taskId", "in": "taskIds", "each": "queue:status:<taskId>"}]},
    input="tasks-request",
    output="tasks-statuses-response",
    query=("continuationToken", "limit"),
    deferred_auth=True,
)
def get_statuses(call: Call) -> dict[str, Any]:
    """The statuses of several tasks; unknown ids are left out."""
    ids, rows = _known_tasks(call)
    chunk, token = page(call, ids, key=lambda t: t)
    return {"statuses": [{"taskId": t, "status": orjson.loads(rows[t]["status"])} for t in chunk], **token}


def _known_tasks(call: Call) -> tuple[list[str], dict[str, Any]]:
    """The asked-for task ids that exist, in the order asked, and their rows; authorizes the call."""
    task_ids = call.body.get("taskIds", [])  # the schema's default, as Taskcluster applies it
    call.authorize(taskIds=task_ids)
    rows = call.runtime.queue_reads.task_rows(task_ids)
    return [t for t in task_ids if t in rows], rows


@queue.endpoint(
    "listDependentTasks",
    "GET",
    "/task/<taskId>/dependents",
    title="List Dependent Tasks",
    category="Tasks",
    scopes="queue:list-dependent-tasks:<taskId>",
    output="list-dependent-tasks-response",
    query=("continuationToken", "limit"),
    params=TASK_PARAMS,
)
def list_dependent_tasks(call: Call) -> dict[str, Any]:
    """The tasks that depend on a task."""
    task_id = call.params["taskId"]
    _service(call).task(task_id)
    reads = call.runtime.queue_reads
    limit, after = page.bounds(call)
    ids = reads.dependents(task_id, after, limit + 1)
    more = len(ids) > limit
    ids = ids[:limit]
    rows = reads.task_rows(ids)
    result: dict[str, Any] = {
        "taskId": task_id,
        "tasks": [
            {"status": orjson.loads(rows[t]["status"]), "task": definition_from_row(rows[t])}
            for t in ids
            if t in rows
        ],
    }
    if more:
        result["continuationToken"] = page.token(ids[-1])
    return result


# task groups


def _group_body(call: Call, task_group_id: str) -> dict[str, Any]:
    reads = call.runtime.queue_reads
    row = reads.task_group_row(task_group_id)
    if row is None:
        raise ResourceNotFound(f"Task group {task_group_id} not found")
    summary = reads.group_summary(task_group_id)
    body: dict[str, Any] = {
        "taskGroupId": task_group_id,
        "schedulerId": row["scheduler_id"],
        "expires": summary.get("expires") or iso(utcnow()),
    }
    if row["sealed"]:
        body["sealed"] = row["sealed"]
    return body


@queue.endpoint(
    "listTaskGroup",
    "GET",
    "/task-group/<taskGroupId>/list",
    title="List Task Group",
    category="Task Groups",
    scopes="queue:list-task-group:<taskGroupId>",
    output="list-task-group-response",
    query=("continuationToken", "limit"),
    params={"taskGroupId": SLUGID},
)
def list_task_group(call: Call) -> dict[str, Any]:
    """The tasks of a group with their statuses, in taskId order."""
    group_id = call.params["taskGroupId"]
    body = _group_body(call, group_id)
    limit, after = page.bounds(call)
    rows = call.runtime.queue_reads.group_tasks(group_id, after, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    body["tasks"] = [{"status": orjson.loads(r["status"]), "task": definition_from_row(r)} for r in rows]
    if more:
        body["continuationToken"] = page.token(rows[-1]["task_id"])
    return body


@queue.endpoint(
    "getTaskGroup",
    "GET",
    "/task-group/<taskGroupId>",
    title="Get Task Group",
    category="Task Groups",
    scopes="queue:list-task-group:<taskGroupId>",
    output="task-group-response",
    params={"taskGroupId": SLUGID},
)
def get_task_group(call: Call) -> dict[str, Any]:
    """A task group: its schedulerId, expiry, and when it was sealed."""
    return _group_body(call, call.params["taskGroupId"])


def _group_command(call: Call) -> tuple[str, Any]:
    group_id = call.params["taskGroupId"]
    row = call.runtime.queue_reads.task_group_row(group_id)
    if row is None:
        raise ResourceNotFound(f"Task group {group_id} not found")
    call.authorize(taskGroupId=group_id, schedulerId=row["scheduler_id"])
    return group_id, row


@queue.endpoint(
    "sealTaskGroup",
    "POST",
    "/task-group/<taskGroupId>/seal",
    title="Seal Task Group",
    category="Task Groups",
    stability="experimental",
    scopes="queue:seal-task-group:<schedulerId>/<taskGroupId>",
    output="task-group-response",
    params={"taskGroupId": SLUGID},
    deferred_auth=True,
)
def seal_task_group(call: Call) -> dict[str, Any]:
    """Seal a task group: it takes no new tasks from now on; idempotent."""
    group_id, _ = _group_command(call)
    _service(call).seal_task_group(group_id, utcnow())
    return _group_body(call, group_id)


@queue.endpoint(
    "cancelTaskGroup",
    "POST",
    "/task-group/<taskGroupId>/cancel",
    title="Cancel Task Group",
    category="Task Groups",
    stability="experimental",
    scopes="queue:cancel-task-group:<schedulerId>/<taskGroupId>",
    output="cancel-task-group-response",
    params={"taskGroupId": SLUGID},
    deferred_auth=True,
)
def cancel_task_group(call: Call) -> dict[str, Any]:
    """Cancel every unresolved task of a sealed group."""
    group_id, _ = _group_command(call)
    canceled = _service(call).cancel_task_group(group_id, utcnow())
    return {"taskGroupId": group_id, "taskGroupSize": len(call.runtime.queue_reads.group_task_ids(group_id)),
            "cancelledCount": len(canceled), "taskIds": canceled}


@queue.endpoint(
    "changeTaskGroupPriority",
    "POST",
    "/task-group/<taskGroupId>/priority",
    title="Change Task Group Priority",
    category="Task Groups",
    stability="experimental",
    scopes="queue:change-task-group-priority:<schedulerId>/<taskGroupId>",
    input="change-task-priority-request",
    output="task-group-priority-change-response",
    params={"taskGroupId": SLUGID},
    deferred_auth=True,
)
def change_task_group_priority(call: Call) -> dict[str, Any]:
    """Change the priority of every unresolved task of a group."""
    group_id, _ = _group_command(call)
    reads = call.runtime.queue_reads
    changed = _service(call).change_task_group_priority(
        group_id, call.body["newPriority"], reads.unresolved_group_tasks(group_id)
    )
    return {"taskGroupId": group_id, "newPriority": call.body["newPriority"],
            "taskIds": [t.task_id for t in changed]}


# the worker interface


def _claim_body(call: Call, task: Task, run_id: int) -> dict[str, Any]:
    run = task.run(run_id)
    return {
        "status": task.status(),
        "runId": run_id,
        "workerGroup": run["workerGroup"],
        "workerId": run["workerId"],
        "takenUntil": run["takenUntil"],
        "task": definition_of(task),
        "credentials": task_credentials(call, task, run_id),
    }


def task_credentials(call: Call, task: Task, run_id: int) -> dict[str, str]:
    """Temporary credentials for a claimed run, signed by the queue's own client."""
    run = task.run(run_id)
    taken_until = parse_time(run["takenUntil"])
    client_id = (
        f"task-client/{task.task_id}/{run_id}/on/{run['workerGroup']}/{run['workerId']}"
        f"/until/{int(taken_until.timestamp())}"
    )
    issuer = call.runtime.queue_client
    scopes = [
        *task.definition["scopes"],
        f"queue:reclaim-task:{task.task_id}/{run_id}",
        f"queue:resolve-task:{task.task_id}/{run_id}",
        f"queue:create-artifact:{task.task_id}/{run_id}",
    ]
    return create_temporary_credentials(
        issuer.client_id,
        issuer.access_token,
        utcnow() - timedelta(minutes=15),
        taken_until + timedelta(minutes=5),
        scopes,
        name=client_id,
    )


@queue.endpoint(
    "claimWork",
    "POST",
    "/claim-work/<taskQueueId>",
    title="Claim Work",
    category="Worker Interface",
    scopes={"AllOf": ["queue:claim-work:<taskQueueId>", "queue:worker-id:<workerGroup>/<workerId>"]},
    input="claim-work-request",
    output="claim-work-response",
    greedy=("taskQueueId",),
    params={"taskQueueId": TASK_QUEUE_ID},
)
def claim_work(call: Call) -> Any:
    """Claim up to ``tasks`` pending runs; waits up to 20 seconds for work to arrive."""
    give_up = time.monotonic() + CLAIM_WAIT_SECONDS
    # Read before claiming: work that arrives after the claim found none moves it.
    seen = call.runtime.pending_signal.generation(call.params["taskQueueId"])
    tasks = _claim_bodies(call)
    if tasks:
        return {"tasks": tasks}
    return _wait_for_work(call, seen, give_up)


async def _wait_for_work(call: Call, seen: int, give_up: float) -> dict[str, Any]:
    """claimWork's long poll, on the event loop: no thread is held while it waits."""
    queue_id = call.params["taskQueueId"]
    signal = call.runtime.pending_signal
    while True:
        # Look again only when work arrives on this queue (or, should a
        # notification be lost, after a fallback interval); meanwhile notice
        # within a second a worker that hung up, which must not be handed
        # work it will never run.
        recheck = time.monotonic() + FALLBACK_RECHECK
        while signal.generation(queue_id) == seen and time.monotonic() < recheck:
            remaining = give_up - time.monotonic()
            if remaining <= 0 or await call.request.is_disconnected():
                return {"tasks": []}
            await signal.wait(queue_id, seen, min(remaining, 1.0))
        if time.monotonic() >= give_up or await call.request.is_disconnected():
            return {"tasks": []}
        seen = signal.generation(queue_id)
        tasks = await in_request_thread(call.request, _claim_bodies, call)
        if tasks:
            return {"tasks": tasks}


def _claim_bodies(call: Call) -> list[dict[str, Any]]:
    """Claim up to ``tasks`` pending runs now; what claimWork answers for each."""
    body = call.body
    count = min(int(body.get("tasks", 1)), 32)
    claims = call.runtime.claim_for_worker(call.params["taskQueueId"], body["workerGroup"], body["workerId"], count)
    return [_claim_body(call, c.task, c.run_id) for c in claims]


@queue.endpoint(
    "claimTask",
    "POST",
    "/task/<taskId>/runs/<runId>/claim",
    title="Claim Task",
    category="Worker Interface",
    stability="deprecated",
    scopes={
        "AllOf": [
            "queue:claim-task:<provisionerId>/<workerType>",
            "queue:worker-id:<workerGroup>/<workerId>",
        ]
    },
    input="task-claim-request",
    output="task-claim-response",
    params=RUN_PARAMS,
    deferred_auth=True,
)
def claim_task(call: Call) -> dict[str, Any]:
    """Claim one pending run by id (deprecated in favour of claimWork)."""
    service = _service(call)
    task = service.task(call.params["taskId"])
    provisioner_id, worker_type = task.task_queue_id.split("/", 1)
    call.authorize(provisionerId=provisioner_id, workerType=worker_type)
    claim = service.claim_task(
        task.task_id, int(call.params["runId"]), call.body["workerGroup"], call.body["workerId"], utcnow()
    )
    return _claim_body(call, claim.task, claim.run_id)


@queue.endpoint(
    "reclaimTask",
    "POST",
    "/task/<taskId>/runs/<runId>/reclaim",
    title="Reclaim task",
    category="Worker Interface",
    scopes="queue:reclaim-task:<taskId>/<runId>",
    output="task-reclaim-response",
    params=RUN_PARAMS,
)
def reclaim_task(call: Call) -> dict[str, Any]:
    """Extend a claim; a run that was cancelled or claimed away answers 409."""
    run_id = int(call.params["runId"])
    task = _service(call).reclaim(call.params["taskId"], run_id, utcnow())
    body = _claim_body(call, task, run_id)
    body.pop("task")
    return body


def _report(call: Call, state: str, reason: str) -> dict[str, Any]:
    task = _service(call).report(call.params["taskId"], int(call.params["runId"]), state, reason, utcnow())
    return {"status": task.status()}


@queue.endpoint(
    "reportCompleted",
    "POST",
    "/task/<taskId>/runs/<runId>/completed",
    title="Report Run Completed",
    category="Worker Interface",
    scopes="queue:resolve-task:<taskId>/<runId>",
    output="task-status-response",
    params=RUN_PARAMS,
)
def report_completed(call: Call) -> dict[str, Any]:
    """Resolve a running run as completed; repeating it is harmless."""
    return _report(call, "completed", "completed")


@queue.endpoint(
    "reportFailed",
    "POST",
    "/task/<taskId>/runs/<runId>/failed",
    title="Report Run Failed",
    category="Worker Interface",
    scopes="queue:resolve-task:<taskId>/<runId>",
    output="task-status-response",
    params=RUN_PARAMS,
)
def report_failed(call: Call) -> dict[str, Any]:
    """Resolve a running run as failed (the task ran and did not succeed)."""
    return _report(call, "failed", "failed")


@queue.endpoint(
    "reportException",
    "POST",
    "/task/<taskId>/runs/<runId>/exception",
    title="Report Task Exception",
    category="Worker Interface",
    scopes="queue:resolve-task:<taskId>/<runId>",
    input="task-exception-request",
    output="task-status-response",
    params=RUN_PARAMS,
)
def report_exception(call: Call) -> dict[str, Any]:
    """Resolve a running run as exception; some reasons retry the task."""
    return _report(call, "exception", call.body["reason"])
