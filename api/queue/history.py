"""The recorded history of a task and of a task group, on the queue service.

Cairn's own addition to the queue, as ``clientHistory`` and ``roleHistory``
are to auth: every event, oldest first, with its log position, the client
that caused it and when, read straight from the event log. A task group's
history is the group's own events and those of each of its tasks, merged in
log order; each task event names its ``taskId``.
"""

from __future__ import annotations

from typing import Any

from cairn.api.call import Call
from cairn.api.endpoints import Endpoints
from cairn.api.errors import ResourceNotFound
from cairn.api.history import ReadHistory, all_history, history_json, history_page
from cairn.api.pagination import page
from cairn.api.queue.context import QueueContext
from cairn.api.queue.route_params import GROUP_PARAMS, PAGED, TASK_PARAMS
from cairn.domain.queue.task import task_key
from cairn.domain.queue.task_group import task_group_key
from cairn.projections.history import HistoryEntry

endpoints = Endpoints()
QueueCall = Call[QueueContext]


def group_history(history: ReadHistory, queue_reads: Any, task_group_id: str) -> list[tuple[str | None, HistoryEntry]]:
    """The group's events and its tasks' events in log order, each with its taskId (None: the group's)."""
    merged: list[tuple[str | None, HistoryEntry]] = [
        (None, entry) for entry in all_history(history, task_group_key(task_group_id))
    ]
    for task_id in queue_reads.group_task_ids(task_group_id):
        merged.extend((task_id, entry) for entry in all_history(history, task_key(task_id)))
    merged.sort(key=lambda item: item[1].position)
    return merged


@endpoints.endpoint(
    "taskHistory", "GET", "/task/<taskId>/history", title="Task History", category="Tasks",
    scopes="queue:get-task:<taskId>", output="list-entity-history-response", query=PAGED,
    stability="experimental", params=TASK_PARAMS,
)
def task_history(call: QueueCall) -> dict[str, Any]:
    """Every recorded change to a task and its runs, oldest first: what changed, who changed it, when."""
    task_id = call.params["taskId"]
    return history_page(call, call.context.history, task_key(task_id), f"Task {task_id} was never recorded")


@endpoints.endpoint(
    "taskGroupHistory", "GET", "/task-group/<taskGroupId>/history", title="Task Group History",
    category="Task Groups", scopes="queue:list-task-group:<taskGroupId>",
    output="list-entity-history-response", query=PAGED, stability="experimental",
    params=GROUP_PARAMS,
)
def task_group_history(call: QueueCall) -> dict[str, Any]:
    """Every recorded change to a task group and to each of its tasks, in log order."""
    limit, after = page.position(call)
    task_group_id = call.params["taskGroupId"]
    found = call.context.group_history(task_group_id, after, limit + 1)
    if not found and not after and not call.context.history(task_group_key(task_group_id), 0, 1):
        raise ResourceNotFound(f"Task group {task_group_id} was never recorded")
    chunk, more = page.cut(found, limit, lambda item: str(item[1].position))
    return {"events": [_group_event_json(task_id, entry) for task_id, entry in chunk], **more}


def _group_event_json(task_id: str | None, entry: HistoryEntry) -> dict[str, Any]:
    body = history_json(entry)
    if task_id is not None:
        body["taskId"] = task_id
    return body
