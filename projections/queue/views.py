"""The queue's write-side views, kept in the transaction of every task event.

- ``tasks``: each live task's status and definition, as the aggregate stands;
- ``task_groups``: the schedulerId of each group and whether it is sealed;
- ``pending``: pending runs in claim order — claimWork takes rows from here;
- ``claims``: running runs and their ``takenUntil``, for the claim reaper;
- ``dependencies`` and ``dependency_waits``: declared and still-unsatisfied
  dependencies; a task leaves the waits when it is scheduled.

These rows commit with the events they follow; why that keeps every claim
single and every release on time is the essay in ``cairn/domain/queue/__init__.py``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson

from cairn.domain.queue.dependencies import waits_on
from cairn.domain.queue.task import Task, priority_rank
from cairn.domain.queue.task_group import TaskGroup
from cairn.projections.projection import Projection
from cairn.projections.store.session import SqlSession


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


class QueueViews(Projection):
    name = "queue"
    tables = ("tasks", "task_groups", "pending", "claims", "dependencies", "dependency_waits")
    ordinal_columns = {"pending": ("seq",)}
    #: A task's row is rewritten whole from its aggregate after every save
    #: (only what the definition fixes is left as inserted): a rebuild may
    #: apply just the latest write of each row (``projections/rebuild/staging.py``).
    last_write_wins = {"upsert_task": ("task_id",)}
    #: A pending run's row and a claim's are removed by task (no other
    #: statement here adds any): a rebuild need not make one that is gone
    #: again before anything else touches its table.
    short_lived = {"insert_pending": ("delete_pending", ("task_id",)), "insert_claim": ("delete_claims", ("task_id",))}

    def __init__(
        self, wake: Callable[[list[str]], None] = lambda queues: None, sender: str = "", audience: Any = None
    ) -> None:
        """``wake`` is called with the task queues that got pending work, once it committed.

        ``sender`` names this process in the notifications other processes
        hear (``consumers/pending_signal.py``), so that it can pass over its own.
        ``audience`` says whether any other process hears them
        (``projections/store/notify_audience.py``); without one, they are sent.
        """
        self.wake = wake
        self.sender = sender
        self.audience = audience
        super().__init__()

    def register(self) -> None:
        self.on(Task.Defined, self.defined)
        self.on(Task.RunPending, self.run_pending)
        self.on(Task.RunClaimed, self.run_claimed)
        self.on(Task.RunReclaimed, self.run_reclaimed)
        self.on(Task.RunResolved, self.run_resolved)
        self.on(Task.UnscheduledResolved, self.unscheduled_resolved)
        self.on(Task.PriorityChanged, self.priority_changed)
        self.on(Task.Expired, self.expired)
        self.on(TaskGroup.Defined, self.group_defined)
        self.on(TaskGroup.Sealed, self.group_sealed)

    def __call__(
        self, session: SqlSession, events: Iterable[Any], aggregates: Mapping[str, Any] | None = None
    ) -> None:
        events = list(events)
        super().__call__(session, events, aggregates)
        if not aggregates:
            return
        # The task row is written once per save, from the state the aggregate reached.
        written: set[str] = set()
        for e in reversed(events):
            task = aggregates.get(e.originator_id)
            if isinstance(task, Task) and e.originator_id not in written:
                written.add(e.originator_id)
                if not task.expired:
                    session.run("upsert_task", TaskRow(task))

    def defined(self, session: SqlSession, e: Any, task: Any) -> None:
        definition = e.definition
        for prerequisite in definition["dependencies"]:
            session.run("insert_dependency", {"prerequisite": prerequisite, "dependent": e.task_id})
        if task is not None and task.runs:
            return
        states = _states(session, definition["dependencies"])
        for prerequisite in definition["dependencies"]:
            if waits_on(definition["requires"], prerequisite, e.task_id, states.get(prerequisite)):
                session.run(
                    "insert_dependency_wait",
                    {"dependent": e.task_id, "prerequisite": prerequisite, "requires": definition["requires"]},
                )

    def run_pending(self, session: SqlSession, e: Any, task: Any) -> None:
        if task.definition["dependencies"]:  # a task that depends on nothing never waits
            session.run("delete_waits_of", {"dependent": task.task_id})
        session.run_in_log_order(
            "insert_pending",
            {
                "task_queue_id": task.task_queue_id,
                "priority_rank": priority_rank(task.priority),
                "task_id": task.task_id,
                "run_id": e.run_id,
                "inserted": e.scheduled,
            },
        )
        queue = task.task_queue_id
        if self.audience is None or self.audience.others:
            session.run("notify_pending", {"payload": f"{self.sender} {queue}" if self.sender else queue})
        session.on_commit(functools.partial(self.wake, [queue]))

    def run_claimed(self, session: SqlSession, e: Any, task: Any) -> None:
        session.run("delete_pending", {"task_id": task.task_id})
        session.run(
            "insert_claim",
            {
                "task_id": task.task_id,
                "run_id": e.run_id,
                "task_queue_id": task.task_queue_id,
                "worker_group": e.worker_group,
                "worker_id": e.worker_id,
                "taken_until": e.taken_until,
            },
        )

    def run_reclaimed(self, session: SqlSession, e: Any, task: Any) -> None:
        session.run(
            "extend_claim", {"task_id": task.task_id, "run_id": e.run_id, "taken_until": e.taken_until}
        )

    def run_resolved(self, session: SqlSession, e: Any, task: Any) -> None:
        # A run that was claimed left the pending queue then; one that never
        # was (canceled, past its deadline) leaves it now.
        if "started" not in task.runs[e.run_id]:
            session.run("delete_pending", {"task_id": task.task_id})
        session.run("delete_claims", {"task_id": task.task_id})
        self._release(session, task.task_id, e.state)

    def unscheduled_resolved(self, session: SqlSession, e: Any, task: Any) -> None:
        session.run("delete_waits_of", {"dependent": task.task_id})
        self._release(session, task.task_id, "exception")

    def _release(self, session: SqlSession, task_id: str, state: str) -> None:
        session.run(
            "delete_satisfied_waits", {"prerequisite": task_id, "completed": state == "completed"}
        )

    def priority_changed(self, session: SqlSession, e: Any, task: Any) -> None:
        session.run(
            "reprioritise_pending",
            {"task_id": task.task_id, "priority_rank": priority_rank(e.priority)},
        )

    def expired(self, session: SqlSession, e: Any, task: Any) -> None:
        task_id = e.originator_id.removeprefix("task/")
        for query in ("delete_pending", "delete_claims", "delete_task"):
            session.run(query, {"task_id": task_id})
        session.run("delete_waits_of", {"dependent": task_id})
        session.run("delete_dependencies_of", {"dependent": task_id})

    def group_defined(self, session: SqlSession, e: Any, _: Any) -> None:
        session.run(
            "insert_task_group", {"task_group_id": e.task_group_id, "scheduler_id": e.scheduler_id}
        )

    def group_sealed(self, session: SqlSession, e: Any, _: Any) -> None:
        session.run(
            "seal_task_group",
            {"task_group_id": e.originator_id.removeprefix("task-group/"), "sealed": e.sealed},
        )


def write_task_row(session: SqlSession, task: Task) -> None:
    session.run("upsert_task", TaskRow(task))


class TaskRow(dict):  # type: ignore[type-arg]
    """The ``upsert_task`` parameters for a task as it stands, worked out when first read.

    A rebuild applies only the latest row of each task (``last_write_wins``),
    often long after it was written, and settles it first
    (``projections/rebuild/staging.py``): from the task, if it has not changed
    since, or else from ``load``, the task as it was then.
    """

    __slots__ = ("task", "version")

    def __init__(self, task: Task):
        super().__init__(task_id=task.task_id)
        self.task, self.version = task, task.version

    def __missing__(self, key: str) -> Any:
        if len(self) == 1:
            self.settle()
            if key in self:
                return dict.get(self, key)
        raise KeyError(key)

    def settle(self, load: Callable[[str, int], Any] | None = None) -> None:
        if len(self) > 1:
            return
        task = self.task
        if task.version != self.version:
            if load is None:
                raise RuntimeError(f"{task.id} changed before its row was written")
            task = load(task.id, self.version)
        d = task.definition
        # The definition as it stands: as defined, unless its priority has changed since.
        definition = d if task.priority == d["priority"] else task.current_definition()
        self.update(
            task_group_id=d["taskGroupId"],
            scheduler_id=d["schedulerId"],
            project_id=d["projectId"],
            task_queue_id=d["taskQueueId"],
            state=task.state,
            resolved=task.resolved,
            priority=task.priority,
            deadline=d["deadline"],
            expires=d["expires"],
            definition=_json(definition),
            status=_json(task.status()),
        )


def _states(session: SqlSession, task_ids: list[str]) -> dict[str, str]:
    if not task_ids:
        return {}
    rows = session.rows("task_rows", {"ids": _json(task_ids)})
    return {r["task_id"]: r["state"] for r in rows}
