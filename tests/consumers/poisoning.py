"""Helpers for feeding consumers a poisoned event: tasks run through the queue service, a fast retry policy."""

from __future__ import annotations

import time
from typing import Any

import taskcluster

from cairn.consumers.dead_letters import RetryPolicy
from cairn.domain.aggregate import acting_as
from cairn.domain.timestamps import utcnow
from tests.acceptance.queue_helpers import task_definition

#: Three tries, short pauses: what a poisoned event costs a test.
FAST = RetryPolicy(attempts=3, first_pause=0.01)


def run_tasks(runtime: Any, count: int, **definition: Any) -> list[str]:
    """``count`` tasks defined, claimed and completed one after the other, in log order."""
    queue = runtime.queue
    task_queue = f"cairn-test/p{taskcluster.slugId()[:8].lower().replace('_', 'x').replace('-', 'y')}"
    done = []
    with acting_as("tests"):
        for _ in range(count):
            task_id = taskcluster.slugId()
            queue.define_task(task_id, task_definition(taskQueueId=task_queue, **definition), utcnow())
            (claim,) = queue.claim_work(task_queue, "tests", "w1", 1, utcnow())
            queue.report(task_id, claim.run_id, "completed", "completed", utcnow())
            done.append(task_id)
    return done


def eventually(check: Any, seconds: float = 15.0, what: str = "the condition") -> None:
    give_up = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < give_up, f"timed out waiting for {what}"
        time.sleep(0.02)


def undecodable(runtime: Any, monkeypatch: Any, position: int) -> None:
    """From now on the event at ``position`` cannot be decoded, as if its class were gone."""
    to_domain_event = runtime.log.mapper.to_domain_event

    def decode(notification: Any) -> Any:
        if notification.id == position:
            raise KeyError("no event class for this topic")
        return to_domain_event(notification)

    monkeypatch.setattr(runtime.log.mapper, "to_domain_event", decode)
