"""The scope parameters of queue endpoints whose scopes depend on more than the route.

An endpoint declares its scope expression template; most fill it from the
route alone. The functions here fill the rest, one per endpoint (or family
of endpoints sharing a template), each from what the request carries or
from the entity it names — so the rule is testable without HTTP.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cairn.domain.auth.scopes import Expression
from cairn.domain.queue.definition import with_defaults
from cairn.domain.queue.task import PRIORITIES, Task
from cairn.domain.queue.task_queue_id import TaskQueueId


def create_task(task_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """createTask: the task's scopes and routes, its project and scheduler, and every
    priority at least as high as its own on its queue (any one of them will do)."""
    d = with_defaults(task_id, body)
    queue = _requested_queue(body)
    priority = d["priority"]
    return {
        "taskId": task_id,
        "priorities": list(PRIORITIES[: PRIORITIES.index(priority) + 1]),
        "routes": d["routes"],
        "scopes": d["scopes"],
        "schedulerId": d["schedulerId"],
        "projectId": body.get("projectId") or "none",
        "taskGroupId": d["taskGroupId"],
        **queue.fields(),
    }


def _requested_queue(body: Mapping[str, Any]) -> TaskQueueId:
    """The queue a body names: its halves when both are given, else its taskQueueId's."""
    provisioner_id, worker_type = body.get("provisionerId"), body.get("workerType")
    if body.get("taskQueueId") and not (provisioner_id and worker_type):
        return TaskQueueId.parse(body["taskQueueId"])
    return TaskQueueId(provisioner_id or "", worker_type or "")


def task_command(task: Task) -> dict[str, Any]:
    """scheduleTask, rerunTask, cancelTask, changeTaskPriority: who scheduled the task, where."""
    d = task.definition
    return {
        "taskId": task.task_id,
        "schedulerId": d["schedulerId"],
        "taskGroupId": d["taskGroupId"],
        "projectId": d["projectId"],
        "taskQueueId": d["taskQueueId"],
    }


def task_group_command(task_group_id: str, scheduler_id: str) -> dict[str, Any]:
    """sealTaskGroup, cancelTaskGroup, changeTaskGroupPriority: the group's scheduler."""
    return {"taskGroupId": task_group_id, "schedulerId": scheduler_id}


def claim_task(task: Task) -> dict[str, Any]:
    """claimTask (deprecated): the halves of the task's queue."""
    return TaskQueueId.parse(task.task_queue_id).halves()


def task_ids(body: Mapping[str, Any]) -> dict[str, Any]:
    """tasks, statuses: every asked-for task (the schema's default list is empty)."""
    return {"taskIds": body.get("taskIds", [])}


def declare_worker(body: Mapping[str, Any]) -> dict[str, Any]:
    """declareWorker: one scope per property the body sets."""
    return {"properties": sorted(body)}


def task_queue_counts_batch(task_queue_ids: list[str]) -> Expression:
    """taskQueueCountsBatch: both counts of every queue asked for.

    Its declared template loops over an expression, which templates cannot
    render, so the expression is built here."""
    return {"AllOf": [f"queue:{kind}-count:{q}" for q in task_queue_ids for kind in ("pending", "claimed")]}
