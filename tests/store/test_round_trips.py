"""How many times a lifecycle's commands wait for PostgreSQL, counted on the connection.

A round trip is one wait for the server's answer to what was sent, as
``make bench`` counts them (``bench/counted_serve.py``): statements sent
together in a pipeline are one. Each command of a
task's lifecycle decides on one flight of reads (the first carrying BEGIN)
and writes in one more (the last carrying COMMIT): a report that resolves
the task reads what the resolution decides on in the flight that locks it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest

from bench.counted_serve import waits_for_answer
from cairn.domain.aggregate import acting_as
from cairn.domain.timestamps import utcnow
from cairn.projections.store import event_log
from tests.domain.queue.stories import QUEUE, body

pytestmark = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)


@contextmanager
def round_trips(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Counts this thread's round trips into the one-item list yielded."""
    count = [0]
    me = threading.get_ident()
    wait = psycopg.Connection.wait

    def counted(self: Any, gen: Any, *args: Any, **kwargs: Any) -> Any:
        if threading.get_ident() == me and waits_for_answer(self, gen):
            count[0] += 1
        return wait(self, gen, *args, **kwargs)

    with monkeypatch.context() as patched:
        patched.setattr(psycopg.Connection, "wait", counted)
        yield count


def test_each_command_of_a_lifecycle_reads_in_one_flight_and_writes_in_one(runtime, monkeypatch):
    monkeypatch.setattr(event_log, "ONE_FLIGHT", True)
    with acting_as("tests/round-trips"):
        for n in range(3):
            now = utcnow()
            task_id = f"trip{n:018d}"
            with round_trips(monkeypatch) as created:
                runtime.queue.define_task(task_id, body(now), now)
            with round_trips(monkeypatch) as claimed:
                [claim] = runtime.queue.claim_work(QUEUE, "group", "w1", 1, now)
            assert claim.task.task_id == task_id
            with round_trips(monkeypatch) as reported:
                task = runtime.queue.report(task_id, 0, "completed", "completed", utcnow())
            assert task.state == "completed"
            # the group of one task resolved with it, in the same commit
            assert runtime.queue.task_group(task.task_group_id).resolutions == 1
            assert (created[0], claimed[0], reported[0]) == (2, 2, 2)
