"""The queue's task endpoints: define, read, schedule, rerun, cancel and reprioritise tasks."""

from __future__ import annotations

from typing import Any

import orjson

from cairn.api.call import Call
from cairn.api.endpoints import Endpoints
from cairn.api.pagination import page
from cairn.api.queue.context import QueueContext
from cairn.api.queue.route_params import TASK_PARAMS
from cairn.domain.queue import scope_requirements
from cairn.domain.queue.task import with_queue_halves
from cairn.domain.timestamps import utcnow

endpoints = Endpoints()
QueueCall = Call[QueueContext]


def definition_from_row(row: dict[str, Any]) -> dict[str, Any]:
    """A task's definition, as getTask shows it, from a queue view row."""
    return with_queue_halves(orjson.loads(row["definition"]))


@endpoints.endpoint(
    "task",
    "GET",
    "/task/<taskId>",
    title="Get Task Definition",
    category="Tasks",
    scopes="queue:get-task:<taskId>",
    output="task",
    params=TASK_PARAMS,
    short=True,
)
def get_task(call: QueueCall) -> dict[str, Any]:
    """The task definition, as created (with defaults filled in)."""
    return call.context.service.task(call.params["taskId"]).public_definition()


@endpoints.endpoint(
    "status",
    "GET",
    "/task/<taskId>/status",
    title="Get task status",
    category="Tasks",
    scopes="queue:status:<taskId>",
    output="task-status-response",
    params=TASK_PARAMS,
    short=True,
)
def get_status(call: QueueCall) -> dict[str, Any]:
    """The status of a task and its runs."""
    return {"status": call.context.service.task(call.params["taskId"]).status()}


@endpoints.endpoint(
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
    scope_params=lambda params, body: scope_requirements.create_task(params["taskId"], body),
    input="create-task-request",
    output="task-status-response",
    params=TASK_PARAMS,
    nonce_in_command=True,
    short=True,
)
def create_task(call: QueueCall) -> dict[str, Any]:
    """Create a task; repeating the same definition returns the current status.

    The caller needs every scope the task carries, ``queue:route:<route>`` for
    each route, and the project, scheduler and priority scopes for the queue.
    """
    task = call.context.service.define_task(call.params["taskId"], call.body, utcnow())
    return {"status": task.status()}


def _task_command(call: QueueCall, command: str) -> dict[str, Any]:
    service = call.context.service
    task = service.task(call.params["taskId"])
    call.authorize(**scope_requirements.task_command(task))
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


@endpoints.endpoint(
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
def schedule_task(call: QueueCall) -> dict[str, Any]:
    """Schedule an unscheduled task now, whatever its dependencies; idempotent."""
    return _task_command(call, "schedule_task")


@endpoints.endpoint(
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
def rerun_task(call: QueueCall) -> dict[str, Any]:
    """Add a new pending run to a resolved task; a pending or running task is left as it is."""
    return _task_command(call, "rerun_task")


@endpoints.endpoint(
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
def cancel_task(call: QueueCall) -> dict[str, Any]:
    """Resolve an unscheduled, pending or running task as exception/canceled; idempotent."""
    return _task_command(call, "cancel_task")


@endpoints.endpoint(
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
def change_task_priority(call: QueueCall) -> dict[str, Any]:
    """Change the priority of a task; a pending run moves in its queue at once."""
    service = call.context.service
    task = service.task(call.params["taskId"])
    call.authorize(**scope_requirements.task_command(task))
    return {"status": service.change_priority(task.task_id, call.body["newPriority"]).status()}


@endpoints.endpoint(
    "tasks",
    "POST",
    "/tasks",
    title="Get Multiple Task Definitions",
    category="Tasks",
    stability="experimental",
    scopes={"AllOf": [{"for": "taskId", "in": "taskIds", "each": "queue:get-task:<taskId>"}]},
    scope_params=lambda params, body: scope_requirements.task_ids(body),
    input="tasks-request",
    output="tasks-response",
    query=("continuationToken", "limit"),
)
def get_tasks(call: QueueCall) -> dict[str, Any]:
    """The definitions of several tasks; unknown ids are left out."""
    ids, rows = _known_tasks(call)
    chunk, token = page(call, ids, key=lambda t: t)
    return {"tasks": [{"taskId": t, "task": definition_from_row(rows[t])} for t in chunk], **token}


@endpoints.endpoint(
    "statuses",
    "POST",
    "/tasks/status",
    title="Get Multiple Task Statuses",
    category="Tasks",
    stability="experimental",
    scopes={"AllOf": [{"for": "taskId", "in": "taskIds", "each": "queue:status:<taskId>"}]},
    scope_params=lambda params, body: scope_requirements.task_ids(body),
    input="tasks-request",
    output="tasks-statuses-response",
    query=("continuationToken", "limit"),
)
def get_statuses(call: QueueCall) -> dict[str, Any]:
    """The statuses of several tasks; unknown ids are left out."""
    ids, rows = _known_tasks(call)
    chunk, token = page(call, ids, key=lambda t: t)
    return {"statuses": [{"taskId": t, "status": orjson.loads(rows[t]["status"])} for t in chunk], **token}


def _known_tasks(call: QueueCall) -> tuple[list[str], dict[str, Any]]:
    """The asked-for task ids that exist, in the order asked, and their rows."""
    task_ids = scope_requirements.task_ids(call.body)["taskIds"]
    rows = call.context.reads.task_rows(task_ids)
    return [t for t in task_ids if t in rows], rows


@endpoints.endpoint(
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
def list_dependent_tasks(call: QueueCall) -> dict[str, Any]:
    """The tasks that depend on a task."""
    task_id = call.params["taskId"]
    call.context.service.task(task_id)
    reads = call.context.reads
    limit, after = page.bounds(call)
    ids, more = page.cut(reads.dependents(task_id, after, limit + 1), limit, lambda t: t)
    rows = reads.task_rows(ids)
    tasks = [
        {"status": orjson.loads(rows[t]["status"]), "task": definition_from_row(rows[t])} for t in ids if t in rows
    ]
    return {"taskId": task_id, "tasks": tasks, **more}
