"""How many times a lifecycle's commands wait for PostgreSQL, counted on the connection.

A round trip is one wait for the server's answer to what was sent, as
``make bench`` counts them (``bench/counted_serve.py``): statements sent
together in a pipeline are one. Each command of a
task's lifecycle decides on one flight of reads and writes in one more,
which commits (one implicit transaction, no BEGIN or COMMIT statement): a
report that resolves
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


@contextmanager
def statements(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The statements this thread sends, in order, into the list yielded."""
    sent: list[str] = []
    me = threading.get_ident()
    execute = psycopg.Cursor.execute

    def counted(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        if threading.get_ident() == me:
            text = query if isinstance(query, str) else query.as_string(self)
            sent.append(" ".join(text.split())[:60])
        return execute(self, query, *args, **kwargs)

    with monkeypatch.context() as patched:
        patched.setattr(psycopg.Cursor, "execute", counted)
        yield sent


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


def test_each_command_of_a_lifecycle_sends_its_reads_and_one_joined_write_without_begin_or_commit(
    runtime, monkeypatch
):
    """The statements of one lifecycle: createTask reads its group, claimWork its pending runs,
    reportCompleted its task, group and resolution; each then writes in one statement, the
    commit carried by the pipeline's end."""
    monkeypatch.setattr(event_log, "ONE_FLIGHT", True)
    with acting_as("tests/round-trips"):
        now = utcnow()
        with statements(monkeypatch) as created:
            runtime.queue.define_task("stmts0000000000000000", body(now), now)
        with statements(monkeypatch) as claimed:
            [claim] = runtime.queue.claim_work(QUEUE, "group", "w1", 1, now)
        with statements(monkeypatch) as reported:
            runtime.queue.report("stmts0000000000000000", 0, "completed", "completed", utcnow())
    sent = created + claimed + reported
    assert not [s for s in sent if s.upper() in ("BEGIN", "COMMIT")], sent
    assert (len(created), len(claimed), len(reported)) == (2, 2, 4), sent
