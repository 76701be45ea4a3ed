"""Dependencies, task groups, cancellation and reruns, through the official client."""

from __future__ import annotations

import pytest
import taskcluster

from tests.acceptance.queue_helpers import TASK_QUEUE, claim_one, task_definition


def run_to(queue, task_id: str, outcome: str = "completed") -> dict:
    claim = claim_one(queue)
    assert claim["status"]["taskId"] == task_id, "expected that task to be the one pending"
    if outcome == "completed":
        return queue.reportCompleted(task_id, str(claim["runId"]))["status"]
    if outcome == "failed":
        return queue.reportFailed(task_id, str(claim["runId"]))["status"]
    return queue.reportException(task_id, str(claim["runId"]), {"reason": outcome})["status"]


def state(queue, task_id: str) -> str:
    return queue.status(task_id)["status"]["state"]


def test_a_diamond_runs_in_dependency_order(server):
    queue = server.client("queue")
    group = taskcluster.slugId()
    a, b, c, d = (taskcluster.slugId() for _ in range(4))
    queue.createTask(a, task_definition(taskGroupId=group))
    queue.createTask(b, task_definition(taskGroupId=group, dependencies=[a]))
    queue.createTask(c, task_definition(taskGroupId=group, dependencies=[a]))
    queue.createTask(d, task_definition(taskGroupId=group, dependencies=[b, c]))
    assert [state(queue, t) for t in (a, b, c, d)] == ["pending", "unscheduled", "unscheduled", "unscheduled"]

    run_to(queue, a)
    assert state(queue, b) == state(queue, c) == "pending"
    assert state(queue, d) == "unscheduled"
    first = complete_next(queue)
    assert first in (b, c)
    assert state(queue, d) == "unscheduled"
    assert complete_next(queue) == ({b, c} - {first}).pop()
    assert state(queue, d) == "pending"
    run_to(queue, d)

    listing = queue.listTaskGroup(group)
    assert {t["status"]["taskId"]: t["status"]["state"] for t in listing["tasks"]} == {
        a: "completed", b: "completed", c: "completed", d: "completed"
    }
    dependents = queue.listDependentTasks(a)
    assert {t["status"]["taskId"] for t in dependents["tasks"]} == {b, c}
    resolved = [e for e in group_events(server, group) if type(e).__name__ == "Resolved"]
    assert len(resolved) == 1


def test_one_completion_releases_many_dependents_at_once(server):
    """A resolution that schedules forty dependents saves them all, in one transaction, in log order."""
    queue = server.client("queue")
    group = taskcluster.slugId()
    prerequisite = taskcluster.slugId()
    queue.createTask(prerequisite, task_definition(taskGroupId=group))
    dependents = [taskcluster.slugId() for _ in range(40)]
    for dependent in dependents:
        queue.createTask(dependent, task_definition(taskGroupId=group, dependencies=[prerequisite]))
    before = server.runtime.log.recorder.max_notification_id()

    run_to(queue, prerequisite)
    assert {state(queue, t) for t in dependents} == {"pending"}
    logged = server.runtime.log.recorder.select_notifications(start=before, limit=1000, inclusive_of_start=False)
    ids = [n.id for n in logged]
    assert ids == sorted(set(ids))
    released = {n.originator_id.removeprefix("task/") for n in logged if n.topic.endswith("Task.RunPending")}
    assert released == set(dependents)
    claimed = queue.claimWork(TASK_QUEUE, {"workerGroup": "tests", "workerId": "w1", "tasks": 32})["tasks"]
    claimed += queue.claimWork(TASK_QUEUE, {"workerGroup": "tests", "workerId": "w1", "tasks": 32})["tasks"]
    assert sorted(c["status"]["taskId"] for c in claimed) == sorted(dependents)


def complete_next(queue) -> str:
    """Claim whatever is pending next and complete it; returns its taskId."""
    claim = claim_one(queue)
    task_id = claim["status"]["taskId"]
    queue.reportCompleted(task_id, str(claim["runId"]))
    return task_id


def group_events(server, group_id: str) -> list:
    return list(server.runtime.log.events.get(f"task-group/{group_id}"))


def test_all_completed_waits_forever_on_a_failed_prerequisite_but_all_resolved_runs(server):
    queue = server.client("queue")
    a = taskcluster.slugId()
    strict, lenient = taskcluster.slugId(), taskcluster.slugId()
    queue.createTask(a, task_definition())
    queue.createTask(strict, task_definition(dependencies=[a], requires="all-completed"))
    queue.createTask(lenient, task_definition(dependencies=[a], requires="all-resolved"))
    run_to(queue, a, "failed")
    assert state(queue, strict) == "unscheduled"
    assert state(queue, lenient) == "pending"


def test_a_task_created_after_its_prerequisite_completed_is_pending_at_once(server):
    queue = server.client("queue")
    a, b = taskcluster.slugId(), taskcluster.slugId()
    queue.createTask(a, task_definition())
    run_to(queue, a)
    assert queue.createTask(b, task_definition(dependencies=[a]))["status"]["state"] == "pending"


def test_self_dependency_waits_for_schedule_task(server):
    queue = server.client("queue")
    task_id = taskcluster.slugId()
    assert queue.createTask(task_id, task_definition(dependencies=[task_id]))["status"]["state"] == "unscheduled"
    assert queue.scheduleTask(task_id)["status"]["state"] == "pending"
    assert queue.scheduleTask(task_id)["status"]["state"] == "pending"  # idempotent


def test_missing_prerequisite_is_refused(server):
    queue = server.client("queue")
    with pytest.raises(taskcluster.exceptions.TaskclusterRestFailure) as refused:
        queue.createTask(taskcluster.slugId(), task_definition(dependencies=[taskcluster.slugId()]))
    assert refused.value.status_code == 400
    assert refused.value.body["code"] == "InputError"


def test_cancel_unscheduled_pending_and_running_tasks(server):
    queue = server.client("queue")
    blocker, unscheduled, pending, running = (taskcluster.slugId() for _ in range(4))
    queue.createTask(blocker, task_definition(taskQueueId="cairn-test/blocker"))
    queue.createTask(unscheduled, task_definition(dependencies=[blocker]))
    queue.createTask(running, task_definition())
    claim_one(queue)
    queue.createTask(pending, task_definition())

    for task_id in (unscheduled, pending, running):
        status = queue.cancelTask(task_id)["status"]
        assert status["state"] == "exception"
        assert status["runs"][-1]["reasonResolved"] == "canceled"
    assert queue.status(unscheduled)["status"]["runs"][0]["reasonCreated"] == "exception"
    # A cancelled run can no longer be reclaimed or reported.
    with pytest.raises(taskcluster.exceptions.TaskclusterRestFailure) as gone:
        queue.reclaimTask(running, "0")
    assert gone.value.status_code == 409
    # Cancelling again is harmless; the pending queue no longer offers the task.
    assert queue.cancelTask(pending)["status"]["state"] == "exception"
    assert server.runtime.claim_for_worker(TASK_QUEUE, "g", "w", 1) == []


def test_seal_then_cancel_a_group(server):
    queue = server.client("queue")
    group = taskcluster.slugId()
    first, second = taskcluster.slugId(), taskcluster.slugId()
    first_definition = task_definition(taskGroupId=group)
    queue.createTask(first, first_definition)
    queue.createTask(second, task_definition(taskGroupId=group, dependencies=[first]))

    with pytest.raises(taskcluster.exceptions.TaskclusterRestFailure) as unsealed:
        queue.cancelTaskGroup(group)
    assert unsealed.value.status_code == 409

    sealed = queue.sealTaskGroup(group)
    assert sealed["taskGroupId"] == group and "sealed" in sealed
    with pytest.raises(taskcluster.exceptions.TaskclusterRestFailure) as refused:
        queue.createTask(taskcluster.slugId(), task_definition(taskGroupId=group))
    assert refused.value.status_code == 409
    assert "sealed" in refused.value.body["message"]
    # Creating a task of the group again, as it was, is still harmless.
    assert queue.createTask(first, first_definition)["status"]["taskId"] == first

    result = queue.cancelTaskGroup(group)
    assert sorted(result["taskIds"]) == sorted([first, second])
    assert state(queue, first) == state(queue, second) == "exception"
    assert queue.getTaskGroup(group)["schedulerId"] == "-"


def test_a_group_takes_one_scheduler_id(server):
    queue = server.client("queue")
    group = taskcluster.slugId()
    queue.createTask(taskcluster.slugId(), task_definition(taskGroupId=group, schedulerId="one"))
    with pytest.raises(taskcluster.exceptions.TaskclusterRestFailure) as refused:
        queue.createTask(taskcluster.slugId(), task_definition(taskGroupId=group, schedulerId="two"))
    assert refused.value.status_code == 409


def test_rerun_adds_a_pending_run(server):
    queue = server.client("queue")
    task_id = taskcluster.slugId()
    queue.createTask(task_id, task_definition())
    run_to(queue, task_id, "failed")
    status = queue.rerunTask(task_id)["status"]
    assert [r["state"] for r in status["runs"]] == ["failed", "pending"]
    assert status["runs"][1]["reasonCreated"] == "rerun"
    assert run_to(queue, task_id)["state"] == "completed"


def test_priority_orders_claims(server):
    queue = server.client("queue")
    low, high = taskcluster.slugId(), taskcluster.slugId()
    queue.createTask(low, task_definition(priority="low"))
    queue.createTask(high, task_definition(priority="high"))
    assert claim_one(queue)["status"]["taskId"] == high
    assert claim_one(queue)["status"]["taskId"] == low


def test_change_task_priority_moves_a_pending_task(server):
    queue = server.client("queue")
    first, second = taskcluster.slugId(), taskcluster.slugId()
    queue.createTask(first, task_definition())
    queue.createTask(second, task_definition())
    assert queue.changeTaskPriority(second, {"newPriority": "highest"})["status"]["taskId"] == second
    assert queue.task(second)["priority"] == "highest"
    assert claim_one(queue)["status"]["taskId"] == second


def test_batch_reads(server):
    queue = server.client("queue")
    ids = [taskcluster.slugId() for _ in range(3)]
    for task_id in ids:
        queue.createTask(task_id, task_definition())
    unknown = taskcluster.slugId()
    statuses = queue.statuses({"taskIds": ids + [unknown]})["statuses"]
    assert sorted(s["taskId"] for s in statuses) == sorted(ids)
    tasks = queue.tasks({"taskIds": ids})["tasks"]
    assert sorted(t["taskId"] for t in tasks) == sorted(ids)


def test_bad_input_is_refused_with_taskcluster_errors(server):
    queue = server.client("queue")
    with pytest.raises(taskcluster.exceptions.TaskclusterRestFailure) as invalid:
        queue.createTask(taskcluster.slugId(), task_definition(priority="urgent"))
    assert invalid.value.status_code == 400 and invalid.value.body["code"] == "InputValidationError"
    with pytest.raises(taskcluster.exceptions.TaskclusterRestFailure) as late:
        queue.createTask(
            taskcluster.slugId(),
            task_definition(deadline=taskcluster.stringDate(taskcluster.fromNow("6 days"))),
        )
    assert late.value.body["code"] == "InputError"
    with pytest.raises(taskcluster.exceptions.TaskclusterRestFailure) as missing:
        queue.status(taskcluster.slugId())
    assert missing.value.status_code == 404 and missing.value.body["code"] == "ResourceNotFound"
    with pytest.raises(taskcluster.exceptions.TaskclusterRestFailure) as bad_id:
        queue.status("not-a-slug")
    assert bad_id.value.status_code == 400
