"""The queue's application service: every command on tasks, runs and task groups.

Each command is one unit of work: load the aggregates, decide, save them
together. Why that makes claims and releases safe under concurrency is the
essay at the top of this package (``cairn/domain/queue/__init__.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from cairn.domain.errors import Conflict, DomainError, InvalidInput, NotFound
from cairn.domain.event_log import EventLog
from cairn.domain.queue.definition import normalise_definition
from cairn.domain.queue.dependencies import satisfies
from cairn.domain.queue.task import Task, task_key
from cairn.domain.queue.task_group import TaskGroup, check_accepts, task_group_key
from cairn.domain.queue.worker import worker_key
from cairn.domain.timestamps import iso

__all__ = ["Claim", "QueueReads", "QueueService", "Resolution", "normalise_definition"]


@dataclass(frozen=True)
class Resolution:
    """What a task's resolution decides on, read with its group's row locked."""

    #: whether the reads assumed the task completed (dependents needing
    #: ``all-completed`` are released only then)
    completed: bool
    #: dependents left waiting for nothing else, in taskId order
    ready: list[str]
    #: the group's row, locked, with its aggregate's stored ``version``
    group: dict[str, Any] | None
    #: the group's other unresolved tasks
    unresolved: int
    #: when the group expires: with its latest-expiring task
    expires: str


class QueueReads(Protocol):
    """The views the queue decides on, read inside the current transaction."""

    def share_prerequisites(self, task_ids: list[str]) -> dict[str, dict[str, Any]]: ...
    def share_task_group(self, task_group_id: str) -> dict[str, Any] | None: ...
    def lock_task_group(self, task_group_id: str) -> dict[str, Any] | None:
        """The group's row, locked; its ``version`` is the TaskGroup aggregate's stored version."""
    def lock_task(self, task_id: str) -> int | None:
        """Lock the task's row; the task aggregate's stored version (None if it has no row)."""
    def lock_task_to_resolve(self, task_id: str, completed: bool) -> tuple[int | None, Resolution]:
        """``lock_task``, then what the task's resolution as ``completed`` (or not)
        would decide on, read in the same flight and in this order: the group's
        row locked, then the dependents and the group's progress as they stand
        once that lock is held (see ``after_resolution``)."""
    def after_resolution(self, task_id: str, completed: bool) -> Resolution:
        """What a task's resolution decides on, read in one go: its group's row
        locked, then its ready dependents and its group's progress as they stand
        once that lock is held."""
    def take_pending(
        self, task_queue_id: str, count: int, worker_key: str
    ) -> tuple[list[tuple[str, int, int | None]], int]:
        """Up to ``count`` pending runs (taskId, runId, the task aggregate's stored version),
        oldest of the highest priority first, locked for this claim; and the stored version
        of the worker's aggregate (0: it has none), read in the same statement."""
    def unresolved_group_tasks(self, task_group_id: str) -> list[str]: ...
    def group_expires(self, task_group_id: str) -> str: ...


@dataclass
class Claim:
    task: Task
    run_id: int


class QueueService:
    def __init__(
        self,
        log: EventLog,
        reads: QueueReads,
        claim_timeout: int,
    ):
        self.log = log
        self.reads = reads
        self.claim_timeout = claim_timeout

    # loading

    def task(self, task_id: str, version: int | None = None) -> Task:
        """The task; ``version``: its stored version, if a read in this transaction found it."""
        task = self.log.get(task_key(task_id), version)
        if task is None or task.expired:
            raise NotFound(f"Task {task_id} not found")
        return task

    def task_group(self, task_group_id: str, version: int | None = None) -> TaskGroup:
        group = self.log.get(task_group_key(task_group_id), version)
        if group is None:
            raise NotFound(f"Task group {task_group_id} not found")
        return group

    def _run(self, command: Callable[[], Any]) -> Any:
        return self.log.command(command)

    def _save(self, *aggregates: Any) -> None:
        self.log.save(*aggregates)

    # tasks

    def define_task(self, task_id: str, definition: dict[str, Any], now: datetime) -> Task:
        """createTask: define (and usually schedule) a task; idempotent for the same definition."""
        definition = normalise_definition(task_id, definition, now)
        first_attempt = True

        def create() -> Task:
            nonlocal first_attempt
            # A new taskId is the common case: the first attempt saves without
            # reading the log. Were the id taken, that save fails on the log's
            # unique key and the retry finds the task; were the task refused
            # (its group sealed since, say), it may be this very task again.
            if first_attempt:
                first_attempt = False
                try:
                    return self._new_task(task_id, definition, now)
                except DomainError:
                    pass
            existing = self.log.get(task_key(task_id))
            if existing is not None:
                if existing.definition != definition:
                    raise Conflict(f"Task {task_id} already exists with a different definition")
                return existing
            return self._new_task(task_id, definition, now)

        return self._run(create)

    def _new_task(self, task_id: str, definition: dict[str, Any], now: datetime) -> Task:
        to_save: list[Any] = []
        group_id = definition["taskGroupId"]
        group = self.reads.share_task_group(group_id)
        if group is None:
            to_save.append(TaskGroup(task_group_id=group_id, scheduler_id=definition["schedulerId"]))
        else:
            check_accepts(group_id, group["scheduler_id"], group["sealed"], definition["schedulerId"])
        waiting = self._check_prerequisites(task_id, definition)
        task = Task(task_id=task_id, definition=definition)
        if not waiting:
            task.schedule(now)
        self._save(task, *to_save)
        return task

    def _check_prerequisites(self, task_id: str, definition: dict[str, Any]) -> bool:
        dependencies = [d for d in definition["dependencies"] if d != task_id]
        rows = self.reads.share_prerequisites(dependencies)
        missing = [d for d in dependencies if d not in rows]
        if missing:
            raise InvalidInput(
                "The following dependencies of this task do not exist: " + ", ".join(missing[:20])
            )
        deadline = definition["deadline"]
        expiring = [d for d in dependencies if rows[d]["expires"] < deadline]
        if expiring:
            raise InvalidInput(
                "These dependencies expire before this task's deadline: " + ", ".join(expiring[:20])
            )
        if task_id in definition["dependencies"]:
            return True
        return any(not satisfies(definition["requires"], rows[d]["state"]) for d in dependencies)

    def schedule_task(self, task_id: str, now: datetime) -> Task:
        def schedule() -> Task:
            task = self.task(task_id)
            if task.schedule(now):
                self._save(task)
            return task

        return self._run(schedule)

    def rerun_task(self, task_id: str, now: datetime) -> Task:
        def rerun() -> Task:
            task = self.task(task_id)
            was_resolved = task.resolved
            task.rerun(now)
            if was_resolved:
                self._save(task)
            return task

        return self._run(rerun)

    def cancel_task(self, task_id: str, now: datetime) -> Task:
        def cancel() -> Task:
            version, resolution = self.reads.lock_task_to_resolve(task_id, completed=False)
            task = self.task(task_id, version)
            if task.cancel(now):
                self._save(task, *self._after_resolution(task, now, resolution))
            return task

        return self._run(cancel)

    def change_priority(self, task_id: str, priority: str) -> Task:
        def change() -> Task:
            task = self.task(task_id)
            if task.change_priority(priority):
                self._save(task)
            return task

        return self._run(change)

    # work

    def claim_work(
        self, task_queue_id: str, worker_group: str, worker_id: str, count: int, now: datetime
    ) -> list[Claim]:
        key = worker_key(task_queue_id, worker_group, worker_id)

        def claim() -> list[Claim]:
            # One read decides: the pending runs, locked, with the stored
            # versions of their tasks and of this worker (cached copies of
            # those versions need no further read). A quarantined worker's
            # claim then takes nothing: the rows stay pending.
            pending, worker_version = self.reads.take_pending(task_queue_id, count, key)
            if not pending:
                return []
            worker = self.log.get(key, worker_version)
            if worker is not None and worker.quarantined_at(now):
                return []
            claims: list[Claim] = []
            for task_id, run_id, version in pending:
                task = self.task(task_id, version)
                task.claim(run_id, worker_group, worker_id, now, self.claim_timeout)
                claims.append(Claim(task, run_id))
            if claims:
                self._save(*(c.task for c in claims))
            return claims

        return self._run(claim)

    def claim_and_resolve(
        self, task_queue_id: str, worker_group: str, worker_id: str,
        outcome: Callable[[Task], tuple[str, str]], now: datetime,
    ) -> tuple[Task, int] | None:
        """Claim the next pending run and resolve it as ``outcome(task)`` says, in one commit.

        For work done inside Cairn (the built-in workers): a run is never left
        claimed by a worker that stopped between the claim and the report. A
        quarantined worker claims nothing, as with claimWork.
        """
        def claim_and_resolve() -> tuple[Task, int] | None:
            # As claimWork decides: one read gives the next pending run, locked,
            # with the stored version of this worker.
            key = worker_key(task_queue_id, worker_group, worker_id)
            pending, worker_version = self.reads.take_pending(task_queue_id, 1, key)
            if not pending:
                return None
            worker = self.log.get(key, worker_version)
            if worker is not None and worker.quarantined_at(now):
                return None
            task_id, run_id, _ = pending[0]
            # The task's row locked as a report locks it: a task created at the same
            # moment with this one as a dependency then sees it resolved, or is seen.
            task = self.task(task_id, self.reads.lock_task(task_id))
            task.claim(run_id, worker_group, worker_id, now, self.claim_timeout)
            state, reason = outcome(task)
            task.report(run_id, state, reason, now)
            self._save(task, *self._after_resolution(task, now))
            return task, run_id

        return self._run(claim_and_resolve)

    def claim_task(
        self, task_id: str, run_id: int, worker_group: str, worker_id: str, now: datetime
    ) -> Claim:
        def claim() -> Claim:
            task = self.task(task_id)
            run = task.run(run_id)
            if run["state"] == "running" and (run["workerGroup"], run["workerId"]) == (worker_group, worker_id):
                return Claim(task, run_id)
            task.claim(run_id, worker_group, worker_id, now, self.claim_timeout)
            self._save(task)
            return Claim(task, run_id)

        return self._run(claim)

    def reclaim(self, task_id: str, run_id: int, now: datetime) -> Task:
        def reclaim() -> Task:
            task = self.task(task_id)
            task.reclaim(run_id, now, self.claim_timeout)
            self._save(task)
            return task

        return self._run(reclaim)

    def report(self, task_id: str, run_id: int, state: str, reason: str, now: datetime) -> Task:
        def report() -> Task:
            # A report of success or failure resolves the task (an exception
            # may retry it): what that resolution decides on is read in the
            # flight that locks the task, rather than in one of its own.
            resolution = None
            if state in ("completed", "failed"):
                version, resolution = self.reads.lock_task_to_resolve(task_id, completed=state == "completed")
            else:
                version = self.reads.lock_task(task_id)
            task = self.task(task_id, version)
            if task.report(run_id, state, reason, now):
                self._save(task, *self._after_resolution(task, now, resolution))
            return task

        return self._run(report)

    # time

    def expire_claim(self, task_id: str, run_id: int, now: datetime) -> None:
        def expire() -> None:
            version = self.reads.lock_task(task_id)
            task = self.log.get(task_key(task_id), version)
            if task is not None and task.expire_claim(run_id, now):
                self._save(task, *self._after_resolution(task, now))

        self._run(expire)

    def exceed_deadline(self, task_id: str, now: datetime) -> None:
        def exceed() -> None:
            version, resolution = self.reads.lock_task_to_resolve(task_id, completed=False)
            task = self.log.get(task_key(task_id), version)
            if task is not None and task.exceed_deadline(now):
                self._save(task, *self._after_resolution(task, now, resolution))

        self._run(exceed)

    def expire_task(self, task_id: str) -> None:
        def expire() -> None:
            task = self.log.get(task_key(task_id))
            if task is not None and not task.expired:
                task.expire()
                self._save(task)

        self._run(expire)

    def _after_resolution(self, task: Task, now: datetime, read: Resolution | None = None) -> list[Any]:
        """Dependents released and group resolution caused by ``task`` resolving.

        ``read``: what the resolution decides on, if it was read already (in
        the flight that locked the task) for the outcome the task came to."""
        if not task.resolved:
            return []
        changed: list[Any] = []
        completed = task.state == "completed"
        if read is None or read.completed != completed:
            read = self.reads.after_resolution(task.task_id, completed)
        for dependent_id in read.ready:
            dependent = self.log.get(task_key(dependent_id))
            if dependent is None or dependent.expired or dependent.runs or now >= dependent.deadline:
                continue
            dependent.schedule(now)
            changed.append(dependent)
        if read.group is not None and read.unresolved == 0:
            group = self.task_group(task.task_group_id, read.group.get("version"))
            group.resolve(expires=read.expires)
            changed.append(group)
        return changed

    # groups

    def seal_task_group(self, task_group_id: str, now: datetime) -> TaskGroup:
        def seal() -> TaskGroup:
            locked = self.reads.lock_task_group(task_group_id)
            group = self.task_group(task_group_id, locked.get("version") if locked else None)
            if not group.sealed:
                group.seal(iso(now), expires=self.reads.group_expires(task_group_id))
                self._save(group)
            return group

        return self._run(seal)

    def cancel_task_group(self, task_group_id: str, now: datetime) -> list[str]:
        """Cancel every unresolved task of a sealed group; returns their ids.

        A task past its deadline is left to resolve as deadline-exceeded, as
        cancelTask would refuse it."""

        def cancel() -> list[str]:
            group = self.task_group(task_group_id)
            if not group.sealed:
                raise Conflict(f"Task group {task_group_id} must be sealed before it can be cancelled")
            task_ids = [
                task_id
                for task_id in self.reads.unresolved_group_tasks(task_group_id)
                if (task := self.log.get(task_key(task_id))) is not None and task.cancellable(now)
            ]
            group.request_cancel(canceled=len(task_ids))
            self._save(group)
            return task_ids

        task_ids = self._run(cancel)
        for task_id in task_ids:
            self.cancel_task(task_id, now)
        return task_ids

    def change_task_group_priority(self, task_group_id: str, priority: str, task_ids: list[str]) -> list[Task]:
        def change() -> list[Task]:
            group = self.task_group(task_group_id)
            changed = []
            for task_id in task_ids:
                task = self.log.get(task_key(task_id))
                if task is not None and not task.expired and not task.resolved and task.change_priority(priority):
                    changed.append(task)
            group.change_priority(priority=priority, changed=len(changed))
            self._save(group, *changed)
            return changed

        return self._run(change)
