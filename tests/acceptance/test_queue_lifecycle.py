"""A task's life through the official client: created, claimed, resolved."""

from __future__ import annotations

import pytest
import taskcluster

from tests.acceptance.queue_helpers import TASK_QUEUE, claim_one, task_definition


def test_task_goes_from_pending_to_completed(server):
    queue = server.client("queue")
    task_id = taskcluster.slugId()
    status = queue.createTask(task_id, task_definition())["status"]
    assert status["state"] == "pending"
    assert status["runs"] == [
        {"runId": 0, "state": "pending", "reasonCreated": "scheduled", "scheduled": status["runs"][0]["scheduled"]}
    ]

    claim = claim_one(queue)
    assert claim["status"]["taskId"] == task_id
    assert claim["runId"] == 0
    assert claim["task"]["payload"] == {"command": ["echo", "hello"]}
    assert queue.status(task_id)["status"]["state"] == "running"

    # The claim's temporary credentials work for the run's own calls.
    worker_queue = taskcluster.Queue({"rootUrl": server.root_url, "credentials": claim["credentials"]})
    reclaimed = worker_queue.reclaimTask(task_id, "0")
    assert reclaimed["runId"] == 0
    final = worker_queue.reportCompleted(task_id, "0")["status"]
    assert final["state"] == "completed"
    assert final["runs"][0]["reasonResolved"] == "completed"
    # Reporting the same outcome again is harmless.
    assert queue.reportCompleted(task_id, "0")["status"]["state"] == "completed"


def test_create_task_is_idempotent_and_conflicts_on_a_different_definition(server):
    queue = server.client("queue")
    task_id = taskcluster.slugId()
    definition = task_definition()
    first = queue.createTask(task_id, definition)["status"]
    again = queue.createTask(task_id, definition)["status"]
    assert again == first
    with pytest.raises(taskcluster.exceptions.TaskclusterRestFailure) as conflict:
        queue.createTask(task_id, task_definition(payload={"command": ["other"]}))
    assert conflict.value.status_code == 409
    assert conflict.value.body["code"] == "RequestConflict"


def test_definition_round_trips_with_defaults(server):
    queue = server.client("queue")
    task_id = taskcluster.slugId()
    queue.createTask(task_id, task_definition())
    definition = queue.task(task_id)
    assert definition["provisionerId"] == "cairn-test"
    assert definition["workerType"] == "worker"
    assert definition["taskGroupId"] == task_id
    assert definition["priority"] == "lowest"
    assert definition["retries"] == 5
    assert definition["schedulerId"] == "-"
    assert definition["projectId"] == "none"


def test_failed_and_exception_reports(server):
    queue = server.client("queue")
    failing, broken = taskcluster.slugId(), taskcluster.slugId()
    queue.createTask(failing, task_definition())
    queue.createTask(broken, task_definition(retries=0))
    claimed = {c["status"]["taskId"]: c for c in queue.claimWork(TASK_QUEUE, {"workerGroup": "g", "workerId": "w", "tasks": 2})["tasks"]}
    assert set(claimed) == {failing, broken}
    assert queue.reportFailed(failing, "0")["status"]["state"] == "failed"
    status = queue.reportException(broken, "0", {"reason": "malformed-payload"})["status"]
    assert status["state"] == "exception"
    assert status["runs"][0]["reasonResolved"] == "malformed-payload"


def test_worker_shutdown_retries_the_task(server):
    queue = server.client("queue")
    task_id = taskcluster.slugId()
    queue.createTask(task_id, task_definition(retries=1))
    claim_one(queue)
    status = queue.reportException(task_id, "0", {"reason": "worker-shutdown"})["status"]
    assert [r["state"] for r in status["runs"]] == ["exception", "pending"]
    assert status["runs"][1]["reasonCreated"] == "retry"
    assert status["retriesLeft"] == 0
    claim = claim_one(queue)
    assert claim["runId"] == 1
    status = queue.reportException(task_id, "1", {"reason": "worker-shutdown"})["status"]
    assert status["state"] == "exception"  # no retries left
    assert len(status["runs"]) == 2


def test_claim_work_waits_for_a_task_created_meanwhile(server):
    import threading
    import time

    queue = server.client("queue")
    task_id = taskcluster.slugId()
    result: dict = {}

    def worker():
        started = time.monotonic()
        result["claim"] = queue.claimWork("cairn-test/waiting", {"workerGroup": "g", "workerId": "w", "tasks": 1})
        result["waited"] = time.monotonic() - started

    thread = threading.Thread(target=worker)
    thread.start()
    time.sleep(0.5)
    queue.createTask(task_id, task_definition(taskQueueId="cairn-test/waiting"))
    thread.join(25)
    assert [t["status"]["taskId"] for t in result["claim"]["tasks"]] == [task_id]
    assert result["waited"] < 5
