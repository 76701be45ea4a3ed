"""On SQLite each thread keeps a connection of its own, so that its page cache outlives its own commits.

The library's pool hands its connections out in turn, and SQLite drops a
connection's page cache whenever another one has committed since: each
command read its pages again. A thread's own connection is reused by that
thread alone; a second connection asked for while it is in use comes from
the pool, and reads only what is committed, as before.
"""

from __future__ import annotations

import gc
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from cairn.runtime import Runtime
from tests.conftest import test_settings as settings_for


@pytest.fixture
def recorder(tmp_path: Path) -> Any:
    runtime = Runtime(settings_for(f"sqlite:///{tmp_path / 'cairn.db'}", tmp_path))
    yield runtime.log.recorder
    runtime.close()


def _in_thread(fn: Any) -> Any:
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(fn()))
    thread.start()
    thread.join(10)
    return result[0]


def test_a_thread_reuses_its_own_connection_and_another_thread_has_another(recorder: Any) -> None:
    with recorder.raw_connection() as first:
        pass
    with recorder.raw_connection() as again:
        assert again is first

    def elsewhere() -> sqlite3.Connection:
        with recorder.raw_connection() as connection:
            return connection

    assert _in_thread(elsewhere) is not first


def test_a_connection_asked_for_while_the_own_is_in_use_reads_only_what_is_committed(recorder: Any) -> None:
    with recorder.raw_connection() as own:
        own.execute("BEGIN IMMEDIATE")
        own.execute("INSERT INTO consumer_positions (name, position) VALUES ('uncommitted', 1)")
        with recorder.raw_connection() as beside:
            assert beside is not own
            seen = beside.execute("SELECT count(*) FROM consumer_positions WHERE name = 'uncommitted'").fetchone()
            assert seen[0] == 0
        own.execute("COMMIT")
    with recorder.raw_connection() as own_again:
        assert own_again is own
        assert own.execute("SELECT count(*) FROM consumer_positions WHERE name = 'uncommitted'").fetchone()[0] == 1


def test_a_threads_connection_closes_when_the_thread_ends(recorder: Any) -> None:
    def use() -> sqlite3.Connection:
        with recorder.raw_connection() as connection:
            connection.execute("SELECT 1")
            return connection

    connection = _in_thread(use)
    gc.collect()
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        connection.execute("SELECT 1")


def test_a_connection_in_use_is_closed_only_once_its_thread_lets_go(recorder: Any) -> None:
    inside, leave = threading.Event(), threading.Event()
    done: list[Any] = []

    def use() -> None:
        with recorder.raw_connection() as connection:
            inside.set()
            leave.wait(10)
            done.append(connection.execute("SELECT 1").fetchone()[0])  # still open

    user = threading.Thread(target=use)
    user.start()
    assert inside.wait(10)
    closer = threading.Thread(target=recorder.close_thread_connections)
    closer.start()
    closer.join(0.2)
    assert closer.is_alive()  # waiting for the user to let go
    leave.set()
    user.join(10)
    closer.join(10)
    assert done == [1] and not closer.is_alive()


def test_closing_the_recorder_closes_every_threads_connection(tmp_path: Path) -> None:
    runtime = Runtime(settings_for(f"sqlite:///{tmp_path / 'cairn.db'}", tmp_path))
    recorder = runtime.log.recorder
    release = threading.Event()
    opened: list[sqlite3.Connection] = []

    used = threading.Event()

    def hold() -> None:
        with recorder.raw_connection() as connection:
            opened.append(connection)
        used.set()
        release.wait(10)  # alive: its connection is closed by the recorder, not by its end

    holder = threading.Thread(target=hold)
    holder.start()
    with recorder.raw_connection() as mine:
        opened.append(mine)
    try:
        assert used.wait(10)
        runtime.close()
        for connection in opened:
            with pytest.raises(sqlite3.ProgrammingError, match="closed"):
                connection.execute("SELECT 1")
    finally:
        release.set()
        holder.join(10)
