"""Task groups: the tasks created under one taskGroupId, with one schedulerId.

The group itself changes rarely — defined with its first task, sealed,
cancelled, reprioritised, resolved — so those are the only events it has.
Which tasks belong to it and how many are unresolved are views kept in the
transaction of each task event.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.domain import event

from cairn.domain.aggregate import CairnAggregate
from cairn.domain.errors import Conflict


def task_group_key(task_group_id: str) -> str:
    return f"task-group/{task_group_id}"


def check_accepts(task_group_id: str, group_scheduler_id: str, sealed: str | None, scheduler_id: str) -> None:
    """A group takes a new task only from its own scheduler, and only until it is sealed.

    Decided on the group's view row, read (and share-locked) in the new
    task's transaction: loading the aggregate would cost createTask a read.
    """
    if scheduler_id != group_scheduler_id:
        raise Conflict(
            f"Task group {task_group_id} belongs to schedulerId {group_scheduler_id}; "
            f"all tasks of a group must share it"
        )
    if sealed:
        raise Conflict(f"Task group {task_group_id} is sealed and takes no new tasks")


class TaskGroup(CairnAggregate):
    @staticmethod
    def create_id(task_group_id: str, **_: Any) -> str:
        return task_group_key(task_group_id)

    @event("Defined")
    def __init__(self, task_group_id: str, scheduler_id: str) -> None:
        self.task_group_id = task_group_id
        self.scheduler_id = scheduler_id
        self.sealed: str | None = None
        self.resolutions = 0

    def seal(self, now: str, expires: str) -> None:
        if not self.sealed:
            self._sealed(sealed=now, expires=expires)

    @event("Sealed")
    def _sealed(self, sealed: str, expires: str) -> None:
        self.sealed = sealed

    @event("CancelRequested")
    def request_cancel(self, canceled: int) -> None:
        pass

    @event("PriorityChanged")
    def change_priority(self, priority: str, changed: int) -> None:
        pass

    @event("Resolved")
    def resolve(self, expires: str) -> None:
        """The group's last unresolved task resolved; ``expires`` is its latest task's."""
        self.resolutions += 1
