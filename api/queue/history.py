"""The recorded history of a task and of a task group, on the queue service.

Cairn's own addition to the queue, as ``clientHistory`` and ``roleHistory``
are to auth: every event, oldest first, with its log position, the client
that caused it and when, read straight from the event log. A task group's
history is the group's own events and those of each of its tasks, merged in
log order; each task event names its ``taskId``.
"""

from __future__ import annotations

from typing import Any

from cairn.api.auth.handlers import cut, history_json
from cairn.api.call import Call
from cairn.api.errors import InvalidRequestArguments, ResourceNotFound
from cairn.api.pagination import page
from cairn.api.queue.tasks import SLUGID, queue
from cairn.domain.queue.task import task_key
from cairn.domain.queue.task_group import task_group_key
from cairn.projections.history import HistoryEntry, read_history
from cairn.projections.queue.group_history import group_history_page

PAGED = ("continuationToken", "limit")
READ_BATCH = 1000


def all_history(log: Any, originator_id: str) -> list[HistoryEntry]:
    """Every event of one aggregate, oldest first."""
    entries: list[HistoryEntry] = []
    while batch := read_history(log, originator_id, entries[-1].version if entries else 0, READ_BATCH):
        entries.extend(batch)
        if len(batch) < READ_BATCH:
            break
    return entries


def group_history(log: Any, queue_reads: Any, task_group_id: str) -> list[tuple[str | None, HistoryEntry]]:
    """The group's events and its tasks' events in log order, each with its taskId (None: the group's)."""
    merged: list[tuple[str | None, HistoryEntry]] = [
        (None, entry) for entry in all_history(log, task_group_key(task_group_id))
    ]
    for task_id in queue_reads.group_task_ids(task_group_id):
        merged.extend((task_id, entry) for entry in all_history(log, task_key(task_id)))
    merged.sort(key=lambda item: item[1].position)
    return merged


def _after(call: Call) -> tuple[int, int]:
    limit, after = page.bounds(call)
    if after and not after.isdigit():
        raise InvalidRequestArguments("continuationToken is not valid")
    return limit, int(after or 0)


@queue.endpoint(
    "taskHistory", "GET", "/task/<taskId>/history", title="Task History", category="Tasks",
    scopes="queue:get-task:<taskId>", output="list-entity-history-response", query=PAGED,
    stability="experimental", params={"taskId": SLUGID},
)
def task_history(call: Call) -> dict[str, Any]:
    """Every recorded change to a task and its runs, oldest first: what changed, who changed it, when."""
    limit, after = _after(call)
    entries = read_history(call.runtime.log, task_key(call.params["taskId"]), after, limit + 1)
    if not entries and not after:
        raise ResourceNotFound(f"Task {call.params['taskId']} was never recorded")
    entries, more = cut(entries, limit, lambda entry: str(entry.version))
    return {"events": [history_json(entry) for entry in entries], **more}


@queue.endpoint(
    "taskGroupHistory", "GET", "/task-group/<taskGroupId>/history", title="Task Group History",
    category="Task Groups", scopes="queue:list-task-group:<taskGroupId>",
    output="list-entity-history-response", query=PAGED, stability="experimental",
    params={"taskGroupId": SLUGID},
)
def task_group_history(call: Call) -> dict[str, Any]:
    """Every recorded change to a task group and to each of its tasks, in log order."""
    limit, after = _after(call)
    task_group_id = call.params["taskGroupId"]
    page = group_history_page(call.runtime.log, task_group_id, after, limit + 1)
    if not page and not after and not read_history(call.runtime.log, task_group_key(task_group_id), 0, 1):
        raise ResourceNotFound(f"Task group {task_group_id} was never recorded")
    chunk, more = cut(page, limit, lambda item: str(item[1].position))
    return {"events": [_group_event_json(task_id, entry) for task_id, entry in chunk], **more}


def _group_event_json(task_id: str | None, entry: HistoryEntry) -> dict[str, Any]:
    body = history_json(entry)
    if task_id is not None:
        body["taskId"] = task_id
    return body
