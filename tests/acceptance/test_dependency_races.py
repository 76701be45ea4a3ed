"""Dependencies under concurrent commands, through the official client (SQLite and PostgreSQL).

Each case runs its commands from threads released together, many times
over: a release lost to a race, or a command refused because two
transactions waited on each other, shows within a few rounds.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import taskcluster

from tests.acceptance.queue_helpers import task_definition
from tests.threads import at_once


def fresh_queue(n: int) -> str:
    return f"races/q{n}x{uuid.uuid4().hex[:10]}"


def claim_all(queue, task_queue_id: str, count: int) -> list[tuple[str, str]]:
    claims = queue.claimWork(task_queue_id, {"workerGroup": "races", "workerId": "w", "tasks": count})["tasks"]
    assert len(claims) == count
    return [(c["status"]["taskId"], str(c["runId"])) for c in claims]


def completer(server, task_id: str, run_id: str) -> Callable[[], None]:
    return lambda: server.client("queue").reportCompleted(task_id, run_id)


def test_prerequisites_in_different_groups_completing_at_once_release_their_dependent(server):
    queue = server.client("queue")
    released = []
    for n in range(25):
        task_queue_id = fresh_queue(n)
        a, b, dependent = (taskcluster.slugId() for _ in range(3))
        for prerequisite in (a, b):
            queue.createTask(prerequisite, task_definition(taskQueueId=task_queue_id, taskGroupId=taskcluster.slugId()))
        queue.createTask(dependent, task_definition(
            taskQueueId=task_queue_id + "d", taskGroupId=taskcluster.slugId(), dependencies=[a, b]))
        errors = at_once(*(completer(server, *claim) for claim in claim_all(queue, task_queue_id, 2)))
        assert not errors, errors[0]
        released.append(queue.status(dependent)["status"]["state"])
    assert released == ["pending"] * 25


def test_a_dependent_created_while_its_prerequisites_complete_is_released_once_they_have(server):
    queue = server.client("queue")
    for n in range(30):
        task_queue_id = fresh_queue(n)
        group = taskcluster.slugId()
        prerequisites = [taskcluster.slugId() for _ in range(4)]
        for prerequisite in prerequisites:
            queue.createTask(prerequisite, task_definition(taskQueueId=task_queue_id, taskGroupId=group))
        dependent = taskcluster.slugId()

        def create() -> None:
            server.client("queue").createTask(dependent, task_definition(
                taskQueueId=task_queue_id + "d", taskGroupId=group, dependencies=prerequisites))

        errors = at_once(create, *(completer(server, *claim) for claim in claim_all(queue, task_queue_id, 4)))
        assert not errors, errors[0]
        assert queue.status(dependent)["status"]["state"] == "pending", f"round {n}"


def test_a_dependent_cancelled_while_its_prerequisite_completes_ends_cancelled(server):
    queue = server.client("queue")
    for n in range(20):
        task_queue_id = fresh_queue(n)
        group = taskcluster.slugId()
        prerequisite, dependent = taskcluster.slugId(), taskcluster.slugId()
        queue.createTask(prerequisite, task_definition(taskQueueId=task_queue_id, taskGroupId=group))
        queue.createTask(dependent, task_definition(
            taskQueueId=task_queue_id + "d", taskGroupId=group, dependencies=[prerequisite]))
        (claim,) = claim_all(queue, task_queue_id, 1)
        errors = at_once(completer(server, *claim), lambda: server.client("queue").cancelTask(dependent))
        assert not errors, errors[0]
        status = queue.status(dependent)["status"]
        assert status["state"] == "exception", f"round {n}"
        assert [r["reasonResolved"] for r in status["runs"]] == ["canceled"]
        assert queue.pendingTasks(task_queue_id + "d")["pendingTasks"] == 0


def test_a_task_cancelled_while_it_is_claimed_ends_cancelled(server):
    """The claim and the cancel lock the same rows in opposite orders: one may wait on the other's lock
    while holding what the other waits for, and PostgreSQL ends one of the two. That one is retried.

    A task of lower priority stands behind the cancelled one, so that a claim
    the cancel beat takes it at once rather than waiting for work."""
    queue = server.client("queue")
    for n in range(30):
        task_queue_id = fresh_queue(n)
        task_id, behind = taskcluster.slugId(), taskcluster.slugId()
        queue.createTask(task_id, task_definition(taskQueueId=task_queue_id, priority="high"))
        queue.createTask(behind, task_definition(taskQueueId=task_queue_id, priority="low"))
        claimed = []

        def claim() -> None:
            claimed.extend(server.client("queue").claimWork(
                task_queue_id, {"workerGroup": "races", "workerId": "w", "tasks": 1})["tasks"])

        errors = at_once(claim, lambda: server.client("queue").cancelTask(task_id))
        assert not errors, errors[0]
        status = queue.status(task_id)["status"]
        assert status["state"] == "exception", f"round {n}"
        assert status["runs"][-1]["reasonResolved"] == "canceled"
        assert len(claimed) == 1
        if claimed[0]["status"]["taskId"] == task_id:
            assert queue.status(behind)["status"]["state"] == "pending"
        else:
            assert claimed[0]["status"]["taskId"] == behind
            assert len(status["runs"]) == 1
