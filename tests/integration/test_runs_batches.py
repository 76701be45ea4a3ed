"""A batch of events reaches the runs view as one statement per kind of write,
leaving the rows that writing each event on its own would.

The lifecycles run at fixed times, so every duration is known to the
millisecond; both back ends must compute them alike.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
import taskcluster

from cairn.consumers.log_follower import read_events
from cairn.domain.aggregate import acting_as
from cairn.domain.queue.task import Task
from cairn.domain.timestamps import iso
from tests.domain.queue.stories import NOW, QUEUE, body

#: Lifecycles of the batch that just complete, beside the ones with a story of their own.
COMPLETED = 20


def at(ms: int) -> Any:
    return NOW + timedelta(milliseconds=ms)


def run_row(task_id: str, run_id: int, state: str, reason_created: str, scheduled: int, **more: Any) -> dict[str, Any]:
    """The view's row for a run; times in milliseconds after NOW, durations worked out from them."""
    started, resolved = more.pop("started", None), more.pop("resolved", None)

    def seconds(start: int | None, end: int | None) -> float | None:
        return None if start is None or end is None else (end - start) / 1000

    return {
        "task_id": task_id, "run_id": run_id, "task_queue_id": QUEUE, "task_group_id": task_id,
        "project_id": "none", "scheduler_id": "-", "state": state, "reason_created": reason_created,
        "reason_resolved": more.pop("reason_resolved", None), "worker_group": more.pop("worker_group", None),
        "worker_id": more.pop("worker_id", None), "scheduled": iso(at(scheduled)),
        "started": None if started is None else iso(at(started)),
        "resolved": None if resolved is None else iso(at(resolved)),
        "pending_seconds": seconds(scheduled, started), "running_seconds": seconds(started, resolved),
        "total_seconds": more.pop("total_seconds", seconds(scheduled, resolved)),
    }


@pytest.fixture
def lifecycles(runtime) -> list[dict[str, Any]]:
    """Tasks through every path the view records, each at its own times; their expected rows."""
    q = runtime.queue
    expected = []

    def define(ms: int = 0, **overrides: Any) -> str:
        task_id = taskcluster.slugId()
        q.define_task(task_id, body(at(ms), **overrides), at(ms))
        return task_id

    with acting_as("tests"):
        for i in range(COMPLETED):
            task_id = define(i)
            q.claim_task(task_id, 0, "g", f"w{i}", at(1_000 * i + 7))
            q.report(task_id, 0, "completed", "completed", at(3_000 * i + 1_501))
            expected.append(run_row(task_id, 0, "completed", "scheduled", i, started=1_000 * i + 7,
                                    resolved=3_000 * i + 1_501, reason_resolved="completed",
                                    worker_group="g", worker_id=f"w{i}"))

        retried = define()
        q.claim_task(retried, 0, "g", "w-lost", at(500))
        q.report(retried, 0, "exception", "worker-shutdown", at(2_000))  # retried as run 1
        q.claim_task(retried, 1, "g", "w-next", at(2_750))
        q.report(retried, 1, "completed", "completed", at(10_125))
        expected += [
            run_row(retried, 0, "exception", "scheduled", 0, started=500, resolved=2_000,
                    reason_resolved="worker-shutdown", worker_group="g", worker_id="w-lost"),
            run_row(retried, 1, "completed", "retry", 2_000, started=2_750, resolved=10_125,
                    reason_resolved="completed", worker_group="g", worker_id="w-next"),
        ]

        failed = define(3)
        q.claim_task(failed, 0, "g", "w-f", at(1_000))
        q.report(failed, 0, "failed", "failed", at(61_001))
        expected.append(run_row(failed, 0, "failed", "scheduled", 3, started=1_000, resolved=61_001,
                                reason_resolved="failed", worker_group="g", worker_id="w-f"))

        pending = define(1)
        expected.append(run_row(pending, 0, "pending", "scheduled", 1))

        running = define(2)
        q.claim_task(running, 0, "g", "w-r", at(999))
        expected.append(run_row(running, 0, "running", "scheduled", 2, started=999, worker_group="g",
                                worker_id="w-r"))

        cancelled = define(4)  # resolved while pending: never started
        q.cancel_task(cancelled, at(5_678))
        expected.append(run_row(cancelled, 0, "exception", "scheduled", 4, resolved=5_678,
                                reason_resolved="canceled"))

        unscheduled = define(5, dependencies=[pending])  # resolved before it was ever scheduled
        q.cancel_task(unscheduled, at(4_000))
        expected.append(run_row(unscheduled, 0, "exception", "exception", 4_000, resolved=4_000,
                                reason_resolved="canceled", total_seconds=0.0))
    for row in expected:
        row["task_group_id"] = runtime.queue.task(row["task_id"]).task_group_id
    return sorted(expected, key=lambda r: (r["task_id"], r["run_id"]))


def view(runtime) -> list[dict[str, Any]]:
    with runtime.store.reading() as session:
        return session.rows("runs_page", {"after_task_id": "", "after_run_id": -1, "limit": 1_000})


def fold(runtime, events: list[Any]) -> list[str]:
    """Fold ``events`` as one batch, in a transaction of its own; the statements it sent."""
    with runtime.store.unit_of_work() as session:
        counting = Counting(session.cursor)
        session.cursor = counting
        runtime.runs_analytics(session, events)
    return counting.sent


class Counting:
    """A cursor that notes every statement it sends (``executemany`` sends one per row)."""

    def __init__(self, cursor: Any):
        self.cursor, self.sent = cursor, []

    def execute(self, sql: Any, params: Any = ()) -> Any:
        self.sent.append(str(sql))
        return self.cursor.execute(sql, params)

    def executemany(self, sql: Any, params: Any) -> Any:
        params = list(params)
        self.sent += [str(sql)] * len(params)
        return self.cursor.executemany(sql, params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.cursor, name)


def all_events(runtime) -> list[Any]:
    return [logged.event for logged in read_events(runtime.log, 0, 10_000)]


def test_a_batch_of_lifecycles_leaves_each_run_as_its_events_say(runtime, lifecycles):
    fold(runtime, all_events(runtime))
    rows = view(runtime)
    assert rows == lifecycles
    seconds = [r[c] for r in rows for c in ("pending_seconds", "running_seconds", "total_seconds")]
    assert all(isinstance(s, float) for s in seconds if s is not None)
    assert all(isinstance(r["run_id"], int) for r in rows)


def test_a_batch_folded_twice_changes_nothing(runtime, lifecycles):
    events = all_events(runtime)
    fold(runtime, events)
    fold(runtime, events)
    assert view(runtime) == lifecycles
    fold(runtime, events + events)  # and every event twice in one batch
    assert view(runtime) == lifecycles


def test_every_event_twice_in_one_batch_counts_once(runtime, lifecycles):
    events = all_events(runtime)
    fold(runtime, [e for e in events for _ in range(2)])
    assert view(runtime) == lifecycles


def test_a_batch_sends_one_statement_per_kind_of_write(runtime, lifecycles):
    events = all_events(runtime)
    sent = fold(runtime, events)
    assert len(sent) == 4
    assert [s.split()[0:3] for s in sent] == [
        ["INSERT", "INTO", "run_tasks"], ["INSERT", "INTO", "runs"], ["UPDATE", "runs", "SET"],
        ["UPDATE", "runs", "SET"],
    ]
    defined = [e for e in events if isinstance(e, Task.Defined)]
    assert len(fold(runtime, defined)) == 1  # no statement for a kind with no rows
    assert fold(runtime, []) == []


def test_of_two_writes_for_one_run_in_a_batch_the_first_counts(runtime):
    """As when each row was written on its own: the first claim takes the run, the next find it running."""
    task = {"task_id": "t", "task_queue_id": "q/a", "task_group_id": "g", "project_id": "p", "scheduler_id": "s"}
    run = {"task_id": "t", "run_id": 0, "state": "pending", "reason_created": "scheduled",
           "reason_resolved": None, "scheduled": iso(at(0)), "resolved": None, "total_seconds": None}
    with runtime.store.unit_of_work() as session:
        session.run("insert_run_tasks", {"rows": json.dumps([task, {**task, "task_queue_id": "q/b"}])})
        session.run("insert_runs", {"rows": json.dumps([run, {**run, "reason_created": "rerun"}])})
        session.run("claim_runs", {"rows": json.dumps([
            {"task_id": "t", "run_id": 0, "worker_group": "g", "worker_id": f"w{i}", "started": iso(at(100 * i + 100))}
            for i in range(3)
        ])})
        session.run("resolve_runs", {"rows": json.dumps([
            {"task_id": "t", "run_id": 0, "state": state, "reason_resolved": state, "resolved": iso(at(1_000))}
            for state in ("failed", "completed")
        ])})
    (row,) = view(runtime)
    assert (row["task_queue_id"], row["reason_created"], row["worker_id"], row["state"]) == (
        "q/a", "scheduled", "w0", "failed",
    )
    assert (row["pending_seconds"], row["running_seconds"], row["total_seconds"]) == (0.1, 0.9, 1.0)
