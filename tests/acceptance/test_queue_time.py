"""Time-driven changes with short times set through configuration."""

from __future__ import annotations

import time

import pytest
import taskcluster

from tests.acceptance.queue_helpers import claim_one, task_definition


@pytest.fixture
def settings_overrides():
    return {"claim_timeout": 1, "reaper_interval": 0.1}


def wait_for(predicate, timeout: float = 10.0):
    give_up = time.monotonic() + timeout
    while time.monotonic() < give_up:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def test_an_expired_claim_resolves_the_run_and_retries(server):
    queue = server.client("queue")
    task_id = taskcluster.slugId()
    queue.createTask(task_id, task_definition(retries=1))
    claim = claim_one(queue)
    assert claim["runId"] == 0

    status = wait_for(lambda: (s := queue.status(task_id)["status"])["runs"][0]["state"] == "exception" and s)
    assert status["runs"][0]["reasonResolved"] == "claim-expired"
    assert status["runs"][1]["state"] == "pending"
    assert status["runs"][1]["reasonCreated"] == "retry"
    # The worker that lost its claim learns so when it reports.
    with pytest.raises(taskcluster.exceptions.TaskclusterRestFailure) as lost:
        queue.reportCompleted(task_id, "0")
    assert lost.value.status_code == 409
    events = [type(e).__qualname__ for e in server.runtime.log.events.get(f"task/{task_id}")]
    assert events == ["Task.Defined", "Task.RunPending", "Task.RunClaimed", "Task.RunResolved", "Task.RunPending"]
    actors = [e.actor for e in server.runtime.log.events.get(f"task/{task_id}")]
    assert actors[-1] == "cairn/reaper" and actors[0] == "static/root"


def test_a_passed_deadline_resolves_the_task(server):
    queue = server.client("queue")
    unscheduled, pending = taskcluster.slugId(), taskcluster.slugId()
    deadline = taskcluster.stringDate(taskcluster.fromNow("2 seconds"))
    queue.createTask(pending, task_definition(deadline=deadline, taskQueueId="cairn-test/nobody"))
    queue.createTask(unscheduled, task_definition(deadline=deadline, dependencies=[unscheduled]))

    for task_id in (pending, unscheduled):
        status = wait_for(lambda: (s := queue.status(task_id)["status"])["state"] == "exception" and s)
        assert status["runs"][-1]["reasonResolved"] == "deadline-exceeded"
    assert server.runtime.claim_for_worker("cairn-test/nobody", "g", "w", 1) == []


def test_an_expired_task_leaves_the_views_but_not_the_log(server):
    queue = server.client("queue")
    task_id = taskcluster.slugId()
    queue.createTask(
        task_id,
        task_definition(
            deadline=taskcluster.stringDate(taskcluster.fromNow("1 second")),
            expires=taskcluster.stringDate(taskcluster.fromNow("2 seconds")),
        ),
    )

    def gone():
        try:
            queue.status(task_id)
        except taskcluster.exceptions.TaskclusterRestFailure as e:
            return e.status_code == 404
        return False

    wait_for(gone)
    events = [type(e).__qualname__ for e in server.runtime.log.events.get(f"task/{task_id}")]
    assert events[-1] == "Task.Expired"
    assert "Task.RunResolved" in events
