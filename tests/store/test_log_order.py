"""A reader following the log under many concurrent writers never skips or reorders an event.

Positions are drawn when an event is inserted, but become visible when its
transaction commits: were commits free to land out of position order, a
reader that has moved past position n + 1 would never see n. The log's
lock (``projections/store/postgres.py``, ``_insert``; SQLite has one
writer at a time) is what prevents it; without it this test fails.
"""

from __future__ import annotations

import threading
import time

import taskcluster

from cairn.consumers.log_follower import read_events
from cairn.domain.aggregate import acting_as
from cairn.domain.timestamps import utcnow
from tests.domain.queue.stories import body

WRITERS = 8
TASKS_EACH = 40


def test_a_follower_sees_every_committed_event_once_in_position_order(runtime):
    log = runtime.log
    writing = threading.Event()
    writing.set()
    seen: list[int] = []
    errors: list[BaseException] = []

    def write() -> None:
        try:
            with acting_as("tests/log-order"):
                for _ in range(TASKS_EACH):
                    now = utcnow()
                    runtime.queue.define_task(taskcluster.slugId(), body(now), now)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    def write_large_saves() -> None:
        # a resolution releasing 20 dependents: a save of more than
        # VALUES_ROWS events, which goes to the database another way
        try:
            with acting_as("tests/log-order"):
                for _ in range(3):
                    now = utcnow()
                    first = taskcluster.slugId()
                    runtime.queue.define_task(first, body(now, taskQueueId="stories/large"), now)
                    for _ in range(20):
                        runtime.queue.define_task(taskcluster.slugId(), body(now, dependencies=[first]), now)
                    [claim] = runtime.queue.claim_work("stories/large", "g", "w", 1, now)
                    runtime.queue.report(claim.task.task_id, 0, "completed", "completed", utcnow())
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    def follow() -> None:
        after = 0
        while True:
            done = not writing.is_set()  # read once more after the last commit
            for logged in read_events(log, after, 100):
                seen.append(logged.position)
                after = logged.position
            if done:
                return
            time.sleep(0.001)

    follower = threading.Thread(target=follow)
    writers = [threading.Thread(target=write) for _ in range(WRITERS)] + [threading.Thread(target=write_large_saves)]
    follower.start()
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join()
    writing.clear()
    follower.join(60)
    assert not errors, errors

    everything = [n.id for n in log.recorder.select_notifications(start=1, limit=1_000_000)]
    assert len(everything) >= WRITERS * TASKS_EACH * 2  # each task: defined, pending
    assert seen == everything  # none skipped, none twice, in position order
