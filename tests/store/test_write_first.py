"""PostgreSQL connections that send a pipeline's statements without polling first (``write_first.py``).

The store's connections are of that kind; a flight of statements then polls
the socket only for its answers, not before each statement; answers,
errors and order are psycopg's own; a flight far larger than the sockets'
buffers, both ways, still completes; and a wait that keeps asking stops
being answered without a poll.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg.waiting import Ready, Wait

from cairn.projections.store.write_first import UNPOLLED_ANSWERS, WriteFirstConnection, write_first

on_postgres = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)

STATEMENTS = 10


@contextmanager
def polls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """What this thread's waits ask the socket for, one item per poll, into the list yielded."""
    asked: list[int] = []
    me = threading.get_ident()
    wait = psycopg.waiting.wait

    def counted(gen: Any, *args: Any, **kwargs: Any) -> Any:
        def watched() -> Any:
            try:
                question = next(gen)
                while True:
                    if threading.get_ident() == me:
                        asked.append(int(question))
                    question = gen.send((yield question))
            except StopIteration as done:
                return done.value

        return wait(watched(), *args, **kwargs)

    with monkeypatch.context() as patched:
        patched.setattr(psycopg.waiting, "wait", counted)
        yield asked


def flight(conn: psycopg.Connection) -> list[Any]:
    """``STATEMENTS`` statements in one pipeline, then their answers."""
    conn.execute("CREATE TEMPORARY TABLE IF NOT EXISTS flight (n INT)")
    with conn.pipeline():
        cursors = [conn.execute("INSERT INTO flight VALUES (%s) RETURNING n * 2 AS twice", (n,))
                   for n in range(STATEMENTS)]
        return [c.fetchone()["twice"] for c in cursors]


@on_postgres
def test_the_stores_connections_write_first(runtime):
    with runtime.log.recorder.datastore.get_connection() as conn:
        assert isinstance(conn, WriteFirstConnection)


@on_postgres
def test_a_flight_polls_for_its_answers_not_before_each_statement(database_url, monkeypatch):
    with psycopg.connect(database_url, row_factory=dict_row, autocommit=True) as plain, \
            WriteFirstConnection.connect(database_url, row_factory=dict_row, autocommit=True) as first:
        for conn in (plain, first):  # prepared alike: psycopg prepares a statement the sixth time
            flight(conn)
        with polls(monkeypatch) as plain_polls:
            plain_answers = flight(plain)
        with polls(monkeypatch) as first_polls:
            first_answers = flight(first)
    assert plain_answers == first_answers == [2 * n for n in range(STATEMENTS)]
    either = int(Wait.RW)
    assert plain_polls.count(either) > STATEMENTS  # psycopg's own: "read or write?" polled before each statement
    assert first_polls.count(either) == 0, first_polls
    # The answers are still waited for (how many polls that takes depends on how they arrive).
    assert int(Wait.R) in first_polls


@on_postgres
def test_an_error_in_a_flight_is_psycopgs_own(database_url):
    def failing_flight(conn: psycopg.Connection) -> tuple[type, int, int]:
        conn.execute("CREATE TEMPORARY TABLE once (n INT PRIMARY KEY)")
        with pytest.raises(psycopg.Error) as raised:
            with conn.pipeline():
                conn.execute("INSERT INTO once VALUES (1)")
                conn.execute("INSERT INTO once VALUES (1)")
                conn.execute("INSERT INTO once VALUES (2)")
        kept = conn.execute("SELECT count(*) AS n FROM once").fetchone()["n"]
        return type(raised.value), kept, conn.execute("SELECT 5 AS five").fetchone()["five"]

    with psycopg.connect(database_url, row_factory=dict_row, autocommit=True) as plain, \
            WriteFirstConnection.connect(database_url, row_factory=dict_row, autocommit=True) as first:
        expected = failing_flight(plain)
        assert expected[0] is psycopg.errors.UniqueViolation and expected[2] == 5
        assert failing_flight(first) == expected


@on_postgres
def test_a_flight_larger_than_the_sockets_buffers_both_ways_completes(database_url):
    """4,000 statements of 16 KiB each way: about 64 MiB sent and answered in one pipeline."""
    value = "x" * 16_384
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            with WriteFirstConnection.connect(database_url, autocommit=True) as conn, conn.pipeline():
                cursors = [conn.execute("SELECT %s::text || %s::text AS v", (value, str(n))) for n in range(4000)]
                outcome["answers"] = [c.fetchone()[0] for c in cursors]
        except BaseException as error:  # noqa: BLE001 - reported below
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(120)
    assert not thread.is_alive(), "the flight did not complete: client and server wait on each other"
    assert "error" not in outcome, outcome.get("error")
    answers = outcome["answers"]
    assert len(answers) == 4000 and all(a == value + str(n) for n, a in enumerate(answers))


def test_a_wait_that_keeps_asking_is_answered_by_polls_after_the_allowance():
    def asking_forever() -> Any:
        answers = []
        for _ in range(UNPOLLED_ANSWERS + 3):
            answers.append((yield Wait.RW))
        answers.append((yield Wait.R))
        return answers

    driven = write_first(asking_forever())
    polled = [next(driven)]
    try:
        while True:
            polled.append(driven.send(Ready.RW))
    except StopIteration as done:
        answers = done.value
    # The first UNPOLLED_ANSWERS were answered at once, without reaching the poll.
    assert answers[:UNPOLLED_ANSWERS] == [Ready.W] * UNPOLLED_ANSWERS
    assert answers[UNPOLLED_ANSWERS:] == [Ready.RW] * 4
    assert polled == [Wait.RW] * 3 + [Wait.R]
