"""The queue's application service as stories, on a real store (SQLite and PostgreSQL) — no HTTP.

Each command is one transaction: what a story reads right after a command
returns is what that command committed.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from cairn.domain.errors import Conflict
from cairn.domain.queue.worker import Worker, worker_key
from cairn.domain.timestamps import utcnow
from tests.domain.queue.stories import QUEUE, body


@pytest.fixture
def queue(runtime):
    return runtime.queue


def test_the_same_definition_again_is_the_same_task_and_another_one_conflicts(queue):
    now = utcnow()
    first = queue.define_task("aaaaaaaaaaaaaaaaaaaaaa", body(now), now)
    again = queue.define_task("aaaaaaaaaaaaaaaaaaaaaa", body(now), now)
    assert again.status() == first.status()
    with pytest.raises(Conflict, match="already exists with a different definition"):
        queue.define_task("aaaaaaaaaaaaaaaaaaaaaa", body(now, priority="high"), now)


def test_a_dependent_is_released_by_the_commit_that_completes_its_prerequisite(queue):
    now = utcnow()
    queue.define_task("prerequisite0000000000", body(now), now)
    waiting = queue.define_task("dependent0000000000000", body(now, dependencies=["prerequisite0000000000"]), now)
    assert waiting.state == "unscheduled"

    [claim] = queue.claim_work(QUEUE, "group", "w1", 1, now)
    assert claim.task.task_id == "prerequisite0000000000"
    queue.report("prerequisite0000000000", 0, "completed", "completed", now)
    assert queue.task("dependent0000000000000").state == "pending"


def test_a_run_is_handed_to_one_claimer_only(queue):
    now = utcnow()
    queue.define_task("only00000000000000000a", body(now), now)
    assert [c.task.task_id for c in queue.claim_work(QUEUE, "group", "w1", 5, now)] == ["only00000000000000000a"]
    assert queue.claim_work(QUEUE, "group", "w2", 5, now) == []


def test_a_quarantined_worker_claims_nothing_until_its_quarantine_is_lifted(runtime, queue):
    now = utcnow()
    queue.define_task("first0000000000000000a", body(now), now)
    queue.claim_work(QUEUE, "group", "w1", 1, now)  # the queue now knows w1
    runtime.workers.quarantine(QUEUE, "group", "w1", now + timedelta(hours=1), "flaky")
    assert runtime.log.get(worker_key(QUEUE, "group", "w1")).quarantined_at(now)

    queue.define_task("second000000000000000a", body(now), now)
    assert queue.claim_work(QUEUE, "group", "w1", 1, now) == []
    # The rule is the Worker's: past the quarantine, the same worker claims again.
    later = now + timedelta(hours=1, seconds=1)
    assert [c.task.task_id for c in queue.claim_work(QUEUE, "group", "w1", 1, later)] == ["second000000000000000a"]


def test_cancelling_a_group_leaves_tasks_past_their_deadline_to_the_deadline(queue):
    now = utcnow()
    group = "group0000000000000000a"
    queue.define_task("soon000000000000000000", body(now, taskGroupId=group, deadline=_iso(now, minutes=10)), now)
    queue.define_task("later00000000000000000", body(now, taskGroupId=group), now)
    queue.seal_task_group(group, now)
    past_first_deadline = now + timedelta(minutes=11)
    assert queue.cancel_task_group(group, past_first_deadline) == ["later00000000000000000"]
    assert queue.task("later00000000000000000").runs[-1]["reasonResolved"] == "canceled"
    assert queue.task("soon000000000000000000").state == "pending"


def test_a_group_takes_tasks_of_its_own_scheduler_until_it_is_sealed(queue):
    now = utcnow()
    group = "group0000000000000000b"
    queue.define_task("member0000000000000000", body(now, taskGroupId=group, schedulerId="ci"), now)
    with pytest.raises(Conflict, match="belongs to schedulerId ci"):
        queue.define_task("stranger00000000000000", body(now, taskGroupId=group, schedulerId="other"), now)
    queue.seal_task_group(group, now)
    with pytest.raises(Conflict, match="is sealed and takes no new tasks"):
        queue.define_task("latecomer0000000000000", body(now, taskGroupId=group, schedulerId="ci"), now)


def _iso(now, **delta):
    from cairn.domain.timestamps import iso

    return iso(now + timedelta(**delta))


def test_worker_quarantine_is_a_rule_of_the_worker():
    from cairn.domain.aggregate import acting_as

    with acting_as("tests/operator"):
        worker = Worker(task_queue_id=QUEUE, worker_group="group", worker_id="w1")
        now = utcnow()
        assert not worker.quarantined_at(now)
        worker.quarantine(now + timedelta(minutes=5), "flaky")
        assert worker.quarantined_at(now) and not worker.quarantined_at(now + timedelta(minutes=5))
        worker.quarantine(now, "fixed")
        assert not worker.quarantined_at(now)
