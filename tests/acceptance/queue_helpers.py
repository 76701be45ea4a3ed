"""Building task definitions the way a scheduler would."""

from __future__ import annotations

from typing import Any

import taskcluster

TASK_QUEUE = "cairn-test/worker"


def task_definition(**overrides: Any) -> dict[str, Any]:
    definition: dict[str, Any] = {
        "taskQueueId": TASK_QUEUE,
        "created": taskcluster.stringDate(taskcluster.fromNow("0 seconds")),
        "deadline": taskcluster.stringDate(taskcluster.fromNow("1 hour")),
        "payload": {"command": ["echo", "hello"]},
        "metadata": {
            "name": "test task",
            "description": "a task created by the test suite",
            "owner": "tests@example.com",
            "source": "https://example.com/cairn/tests",
        },
    }
    definition.update(overrides)
    return definition


def claim_one(queue: Any, task_queue_id: str = TASK_QUEUE, worker_id: str = "w1") -> dict[str, Any]:
    result = queue.claimWork(task_queue_id, {"workerGroup": "tests", "workerId": worker_id, "tasks": 1})
    assert len(result["tasks"]) == 1, result
    return result["tasks"][0]
