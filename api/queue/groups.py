"""The queue's task-group endpoints: list, read, seal, cancel and reprioritise a group."""

from __future__ import annotations

from typing import Any

import orjson

from cairn.api.call import Call
from cairn.api.endpoints import Endpoints
from cairn.api.errors import ResourceNotFound
from cairn.api.pagination import page
from cairn.api.queue.context import QueueContext
from cairn.api.queue.route_params import GROUP_PARAMS
from cairn.api.queue.tasks import definition_from_row
from cairn.domain.queue import scope_requirements
from cairn.domain.timestamps import iso, utcnow

endpoints = Endpoints()
QueueCall = Call[QueueContext]


def _group_row(call: QueueCall, task_group_id: str) -> dict[str, Any]:
    row = call.context.reads.task_group_row(task_group_id)
    if row is None:
        raise ResourceNotFound(f"Task group {task_group_id} not found")
    return row


def _group_body(call: QueueCall, task_group_id: str) -> dict[str, Any]:
    row = _group_row(call, task_group_id)
    summary = call.context.reads.group_summary(task_group_id)
    body: dict[str, Any] = {
        "taskGroupId": task_group_id,
        "schedulerId": row["scheduler_id"],
        "expires": summary.get("expires") or iso(utcnow()),
    }
    if row["sealed"]:
        body["sealed"] = row["sealed"]
    return body


@endpoints.endpoint(
    "listTaskGroup",
    "GET",
    "/task-group/<taskGroupId>/list",
    title="List Task Group",
    category="Task Groups",
    scopes="queue:list-task-group:<taskGroupId>",
    output="list-task-group-response",
    query=("continuationToken", "limit"),
    params=GROUP_PARAMS,
)
def list_task_group(call: QueueCall) -> dict[str, Any]:
    """The tasks of a group with their statuses, in taskId order."""
    group_id = call.params["taskGroupId"]
    body = _group_body(call, group_id)
    limit, after = page.bounds(call)
    rows, more = page.cut(call.context.reads.group_tasks(group_id, after, limit + 1), limit, lambda r: r["task_id"])
    body["tasks"] = [{"status": orjson.loads(r["status"]), "task": definition_from_row(r)} for r in rows]
    return {**body, **more}


@endpoints.endpoint(
    "getTaskGroup",
    "GET",
    "/task-group/<taskGroupId>",
    title="Get Task Group",
    category="Task Groups",
    scopes="queue:list-task-group:<taskGroupId>",
    output="task-group-response",
    params=GROUP_PARAMS,
)
def get_task_group(call: QueueCall) -> dict[str, Any]:
    """A task group: its schedulerId, expiry, and when it was sealed."""
    return _group_body(call, call.params["taskGroupId"])


def _group_command(call: QueueCall) -> str:
    """The group a command names, once the caller is authorized for its scheduler."""
    group_id = call.params["taskGroupId"]
    row = _group_row(call, group_id)
    call.authorize(**scope_requirements.task_group_command(group_id, row["scheduler_id"]))
    return group_id


@endpoints.endpoint(
    "sealTaskGroup",
    "POST",
    "/task-group/<taskGroupId>/seal",
    title="Seal Task Group",
    category="Task Groups",
    stability="experimental",
    scopes="queue:seal-task-group:<schedulerId>/<taskGroupId>",
    output="task-group-response",
    params=GROUP_PARAMS,
    deferred_auth=True,
)
def seal_task_group(call: QueueCall) -> dict[str, Any]:
    """Seal a task group: it takes no new tasks from now on; idempotent."""
    group_id = _group_command(call)
    call.context.service.seal_task_group(group_id, utcnow())
    return _group_body(call, group_id)


@endpoints.endpoint(
    "cancelTaskGroup",
    "POST",
    "/task-group/<taskGroupId>/cancel",
    title="Cancel Task Group",
    category="Task Groups",
    stability="experimental",
    scopes="queue:cancel-task-group:<schedulerId>/<taskGroupId>",
    output="cancel-task-group-response",
    params=GROUP_PARAMS,
    deferred_auth=True,
)
def cancel_task_group(call: QueueCall) -> dict[str, Any]:
    """Cancel every unresolved task of a sealed group."""
    group_id = _group_command(call)
    canceled = call.context.service.cancel_task_group(group_id, utcnow())
    return {"taskGroupId": group_id, "taskGroupSize": len(call.context.reads.group_task_ids(group_id)),
            "cancelledCount": len(canceled), "taskIds": canceled}


@endpoints.endpoint(
    "changeTaskGroupPriority",
    "POST",
    "/task-group/<taskGroupId>/priority",
    title="Change Task Group Priority",
    category="Task Groups",
    stability="experimental",
    scopes="queue:change-task-group-priority:<schedulerId>/<taskGroupId>",
    input="change-task-priority-request",
    output="task-group-priority-change-response",
    params=GROUP_PARAMS,
    deferred_auth=True,
)
def change_task_group_priority(call: QueueCall) -> dict[str, Any]:
    """Change the priority of every unresolved task of a group."""
    group_id = _group_command(call)
    priority = call.body["newPriority"]
    changed = call.context.service.change_task_group_priority(
        group_id, priority, call.context.reads.unresolved_group_tasks(group_id)
    )
    return {"taskGroupId": group_id, "newPriority": priority, "taskIds": [t.task_id for t in changed]}
