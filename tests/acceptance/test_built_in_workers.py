"""The built-in workers: tasks on ``built-in/succeed`` and ``built-in/fail`` resolve with no worker running."""

from __future__ import annotations

import time
from typing import Any

import taskcluster

from cairn.api.queue.service import queue as queue_service
from tests.acceptance.cairn_clients import cairn_client
from tests.acceptance.queue_helpers import task_definition

CairnQueue = cairn_client(taskcluster.Queue, queue_service)

RESOLVED = ("completed", "failed", "exception")


def create(queue: Any, task_queue_id: str, payload: Any = None, **overrides: Any) -> str:
    task_id = taskcluster.slugId()
    queue.createTask(task_id, task_definition(taskQueueId=task_queue_id, payload={} if payload is None else payload,
                                              **overrides))
    return task_id


def resolved(queue: Any, task_id: str, timeout: float = 30) -> dict[str, Any]:
    give_up = time.monotonic() + timeout
    while True:
        status = queue.status(task_id)["status"]
        if status["state"] in RESOLVED:
            return status
        assert time.monotonic() < give_up, f"task {task_id} is still {status['state']}"
        time.sleep(0.05)


def test_built_in_succeed_completes_and_built_in_fail_fails(server):
    queue = server.client("queue")
    started = time.monotonic()
    succeeding = create(queue, "built-in/succeed")
    failing = create(queue, "built-in/fail")

    status = resolved(queue, succeeding)
    assert status["state"] == "completed"
    run = status["runs"][0]
    assert (run["reasonResolved"], run["workerGroup"], run["workerId"]) == ("completed", "built-in", "succeed")
    status = resolved(queue, failing)
    assert status["state"] == "failed"
    run = status["runs"][0]
    assert (run["reasonResolved"], run["workerGroup"], run["workerId"]) == ("failed", "built-in", "fail")
    # Woken by the pending signal, not by a poll every few seconds.
    assert time.monotonic() - started < 3
    # Claimed and resolved as a worker would be, by the built-in workers, in the log like any other change.
    events = CairnQueue(server.options()).taskHistory(succeeding)["events"]
    assert [(e["type"], e["clientId"]) for e in events] == [
        ("TaskDefined", "static/root"),
        ("TaskRunPending", "static/root"),
        ("TaskRunClaimed", "cairn/built-in-workers"),
        ("TaskRunResolved", "cairn/built-in-workers"),
    ]


def test_a_payload_that_is_not_empty_is_malformed(server):
    queue = server.client("queue")
    for task_queue_id in ("built-in/succeed", "built-in/fail"):
        task_id = create(queue, task_queue_id, {"command": ["true"]})
        status = resolved(queue, task_id)
        assert (status["state"], status["runs"][0]["reasonResolved"]) == ("exception", "malformed-payload")


def test_dependents_of_built_in_tasks_run_when_they_resolve(server):
    queue = server.client("queue")
    first = create(queue, "built-in/succeed")
    second = create(queue, "built-in/succeed", dependencies=[first])
    # Waits for a failure as well as a success: runs once both are resolved.
    failed = create(queue, "built-in/fail")
    third = create(queue, "built-in/fail", dependencies=[second, failed], requires="all-resolved")
    assert resolved(queue, second)["state"] == "completed"
    assert resolved(queue, third)["state"] == "failed"
    assert queue.status(first)["status"]["state"] == "completed"


def test_many_built_in_tasks_at_once_all_resolve_once(server):
    queue = server.client("queue")
    task_ids = [create(queue, "built-in/succeed" if i % 2 else "built-in/fail") for i in range(40)]
    for i, task_id in enumerate(task_ids):
        status = resolved(queue, task_id)
        assert status["state"] == ("completed" if i % 2 else "failed")
        assert len(status["runs"]) == 1


def test_the_built_in_workers_are_listed_and_can_be_quarantined(server):
    queue = server.client("queue")
    assert resolved(queue, create(queue, "built-in/succeed"))["state"] == "completed"
    worker = queue.getWorker("built-in", "succeed", "built-in", "succeed")
    assert worker["recentTasks"] and worker["workerId"] == "succeed"

    until = taskcluster.stringDate(taskcluster.fromNow("1 hour"))
    queue.quarantineWorker("built-in", "succeed", "built-in", "succeed", {"quarantineUntil": until})
    waiting = create(queue, "built-in/succeed")
    time.sleep(1.5)
    assert queue.status(waiting)["status"]["state"] == "pending"
    now = taskcluster.stringDate(taskcluster.fromNow("0 seconds"))
    queue.quarantineWorker("built-in", "succeed", "built-in", "succeed", {"quarantineUntil": now})
    # No pending signal for a lifted quarantine: the built-in workers look again within seconds.
    assert resolved(queue, waiting)["state"] == "completed"
