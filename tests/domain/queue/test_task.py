"""The Task aggregate as a story: runs pending, claimed, retried, resolved — no HTTP, no store."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cairn.domain.errors import Conflict, InvalidInput
from cairn.domain.queue.definition import normalise_definition
from cairn.domain.queue.task import MAX_RUNS, Task
from tests.domain.queue.stories import NOW, body

LATER = NOW + timedelta(minutes=1)


def new_task(task_id: str = "story", **overrides) -> Task:
    return Task(task_id=task_id, definition=normalise_definition(task_id, body(**overrides), NOW))


def states(task: Task) -> list[tuple[str, str | None]]:
    return [(run["state"], run.get("reasonResolved")) for run in task.runs]


def test_a_worker_shutdown_is_retried_and_the_retry_completes():
    task = new_task()
    assert task.state == "unscheduled"
    assert task.schedule(NOW) is True
    assert task.schedule(NOW) is False  # run 0 exists already

    task.claim(0, "group", "w1", NOW, timeout=1200)
    assert task.report(0, "exception", "worker-shutdown", LATER) is True
    assert states(task) == [("exception", "worker-shutdown"), ("pending", None)]
    assert task.runs[1]["reasonCreated"] == "retry"
    assert task.retries_left == 4

    task.claim(1, "group", "w2", LATER, timeout=1200)
    assert task.report(1, "completed", "completed", LATER) is True
    assert task.resolved and task.state == "completed"
    # The same report again is harmless; a different outcome is a conflict.
    assert task.report(1, "completed", "completed", LATER) is False
    with pytest.raises(Conflict):
        task.report(1, "failed", "failed", LATER)


def test_a_run_is_claimed_once_and_a_claim_never_outlives_the_deadline():
    task = new_task()
    task.schedule(NOW)
    task.claim(0, "group", "w1", NOW, timeout=1200)
    with pytest.raises(Conflict, match="is running, not pending"):
        task.claim(0, "group", "w2", NOW, timeout=1200)
    task.reclaim(0, task.deadline - timedelta(minutes=1), timeout=1200)
    assert task.runs[0]["takenUntil"] == task.definition["deadline"]


def test_a_claim_records_its_task_queue_and_one_recorded_without_it_applies_the_same():
    task = new_task()
    task.schedule(NOW)
    task.claim(0, "group", "w1", NOW, timeout=1200)
    events = task.collect_events()
    claimed = events[-1]
    assert type(claimed) is Task.RunClaimed and claimed.task_queue_id == task.task_queue_id
    # As recorded before the event carried it: the same task once applied.
    old = object.__new__(Task.RunClaimed)
    object.__setattr__(old, "__dict__", {k: v for k, v in vars(claimed).items() if k != "task_queue_id"})
    replayed = None
    for event in [*events[:-1], old]:
        replayed = event.mutate(replayed)
    assert vars(replayed) == vars(task)


def test_an_unscheduled_task_is_canceled_as_its_run_0_and_cancel_is_idempotent():
    task = new_task()
    assert task.cancel(NOW) is True
    assert states(task) == [("exception", "canceled")]
    assert task.cancel(NOW) is False


def test_past_its_deadline_a_task_cannot_be_canceled_and_resolves_as_deadline_exceeded():
    task = new_task()
    task.schedule(NOW)
    past = task.deadline
    assert not task.cancellable(past)
    with pytest.raises(Conflict, match=r"can't be canceled past its deadline of 2030-06-01T13:00:00.000Z"):
        task.cancel(past)
    assert task.exceed_deadline(past) is True
    assert states(task) == [("exception", "deadline-exceeded")]


def test_a_resolved_task_reruns_until_it_has_fifty_runs():
    task = new_task(retries=0)
    task.schedule(NOW)
    task.rerun(NOW)  # pending: nothing to do
    assert len(task.runs) == 1
    for run_id in range(MAX_RUNS):
        task.claim(run_id, "group", "w1", NOW, timeout=1200)
        task.report(run_id, "failed", "failed", NOW)
        if run_id < MAX_RUNS - 1:
            task.rerun(NOW)
    assert len(task.runs) == MAX_RUNS
    with pytest.raises(Conflict, match="already has 50 runs"):
        task.rerun(NOW)


def test_a_worker_reports_only_reasons_a_worker_may_give():
    task = new_task()
    task.schedule(NOW)
    task.claim(0, "group", "w1", NOW, timeout=1200)
    with pytest.raises(InvalidInput):
        task.report(0, "exception", "claim-expired", NOW)


def test_status_and_definition_show_both_halves_of_the_task_queue():
    task = new_task(taskQueueId="proj-a/builder")
    status = task.status()
    assert (status["provisionerId"], status["workerType"], status["taskQueueId"]) == (
        "proj-a", "builder", "proj-a/builder",
    )
    assert list(status)[:4] == ["taskId", "provisionerId", "workerType", "taskQueueId"]
    shown = task.public_definition()
    assert (shown["provisionerId"], shown["workerType"], shown["taskQueueId"]) == ("proj-a", "builder", "proj-a/builder")
    task.change_priority("high")
    assert task.public_definition()["priority"] == "high"
    assert task.definition["priority"] == "lowest"
