"""A command in one pipelined flight on PostgreSQL, on a single reused connection.

The pool hands every unit of work the same connection here, so what one
command leaves behind (an open transaction, psycopg's bookkeeping of its
prepared statements) is what the next one finds. A command that gives up
half-way must leave nothing behind that a later command trips on.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest

from cairn.domain.aggregate import acting_as
from cairn.domain.errors import Conflict
from cairn.domain.timestamps import utcnow
from cairn.projections.store import event_log
from tests.domain.queue.stories import QUEUE, body


@pytest.fixture
def one_connection(runtime, monkeypatch) -> Iterator[Any]:
    monkeypatch.setattr(event_log, "ONE_FLIGHT", True)
    pool = runtime.log.recorder.datastore.pool
    with pool.connection() as conn:

        @contextmanager
        def the_same(*args: Any, **kwargs: Any) -> Iterator[Any]:
            yield conn

        monkeypatch.setattr(pool, "connection", the_same)
        yield conn


def lifecycle(runtime, task_id: str) -> None:
    now = utcnow()
    runtime.queue.define_task(task_id, body(now), now)
    [claim] = runtime.queue.claim_work(QUEUE, "group", "w1", 1, now)
    assert claim.task.task_id == task_id
    runtime.queue.report(task_id, 0, "completed", "completed", utcnow())


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_command_that_gives_up_mid_flight_leaves_its_connection_as_good_as_new(runtime, one_connection):
    with acting_as("tests/one-flight"):
        for n in range(6):  # past psycopg's threshold: the hot statements are prepared
            lifecycle(runtime, f"warm{n:018d}")
        assert one_connection._prepared._names, "nothing prepared: the test would prove nothing"
        for n in range(3):
            # decided on reads in the flight, then refused: the flight ends having written nothing
            with pytest.raises(Conflict):
                runtime.queue.report(f"warm{n:018d}", 0, "failed", "failed", utcnow())
            assert one_connection.info.transaction_status == 0  # idle: nothing left open
            # reads outside a unit of work come first, as a status request's would
            for m in range(3):
                assert runtime.queue.task(f"warm{m:018d}").state == "completed"
            for m in range(3):
                lifecycle(runtime, f"after{n}{m:016d}")
        assert runtime.queue.task(f"after2{2:016d}").state == "completed"
        assert runtime.queue.task("warm000000000000000000").state == "completed"


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_each_committed_command_notifies_the_log_once_and_one_that_gives_up_not_at_all(runtime, database_url):
    with psycopg.connect(database_url, autocommit=True) as listener, acting_as("tests/one-flight"):
        listener.execute("LISTEN cairn_events")
        lifecycle(runtime, "notified00000000000000")
        with pytest.raises(Conflict):
            runtime.queue.report("notified00000000000000", 0, "failed", "failed", utcnow())
        heard = list(listener.notifies(timeout=1))
    token = runtime.log.recorder.notify_token
    assert [(n.channel, n.payload) for n in heard] == [("cairn_events", token)] * 3  # define, claim, report


def test_a_command_that_fails_after_sending_its_writes_commits_none_of_them(runtime, monkeypatch):
    """On PostgreSQL the flight's end would commit what it sent (an implicit transaction ends at
    the pipeline's Sync): a command that fails after its save must roll the save back all the same."""
    monkeypatch.setattr(event_log, "ONE_FLIGHT", True)
    with acting_as("tests/one-flight"):
        now = utcnow()
        task_id = "failsafter000000000000"
        runtime.queue.define_task(task_id, body(now), now)
        [claim] = runtime.queue.claim_work(QUEUE, "group", "w1", 1, now)
        events_before = len(list(runtime.log.events.get(f"task/{task_id}")))
        save = runtime.queue._save

        def save_then_fail(*aggregates: Any) -> None:
            save(*aggregates)
            runtime.store.current_session().send_deferred()  # everything the save holds is sent
            raise RuntimeError("failed after the save")

        monkeypatch.setattr(runtime.queue, "_save", save_then_fail)
        with pytest.raises(RuntimeError, match="after the save"):
            runtime.queue.report(task_id, 0, "completed", "completed", utcnow())
        monkeypatch.setattr(runtime.queue, "_save", save)
        assert len(list(runtime.log.events.get(f"task/{task_id}"))) == events_before
        assert runtime.queue_reads.task_rows([task_id])[task_id]["state"] == "running"
        assert runtime.queue.report(task_id, 0, "completed", "completed", utcnow()).state == "completed"
        assert runtime.queue_reads.task_rows([task_id])[task_id]["state"] == "completed"
