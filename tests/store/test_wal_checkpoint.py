"""On SQLite, a serving process checkpoints the WAL in a thread of its own, not inside a commit.

A commit that takes the WAL past SQLite's threshold copies it back into the
database with two fsyncs, while every other writer, and on SQLite the event
loop, waits. While a runtime serves, its connections never checkpoint; a
thread does, passively, every interval, and has a WAL that passive
checkpoints leave long start again.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import slugid

from cairn.domain.aggregate import acting_as
from cairn.domain.timestamps import iso
from cairn.runtime import Runtime
from tests.acceptance.waiting import wait_for
from tests.conftest import test_settings as settings_for


def _define_tasks(runtime: Runtime, count: int) -> None:
    now = datetime.now(UTC)
    definition = {
        "taskQueueId": "cairn-test/wal",
        "created": iso(now),
        "deadline": iso(now + timedelta(days=1)),
        "payload": {"filler": "x" * 2000},
        "metadata": {"name": "n", "description": "d", "owner": "o@example.com", "source": "https://example.com"},
    }
    with acting_as("tests/wal"):
        for _ in range(count):
            runtime.queue.define_task(slugid.nice(), definition, now)


def _autocheckpoint(runtime: Runtime) -> int:
    with runtime.log.recorder.raw_connection() as connection:
        return connection.execute("PRAGMA wal_autocheckpoint").fetchone()[0]


def test_commits_leave_the_wal_to_the_checkpointer(tmp_path: Path) -> None:
    path = tmp_path / "cairn.db"
    runtime = Runtime(settings_for(f"sqlite:///{path}", tmp_path))
    try:
        recorder = runtime.log.recorder
        assert _autocheckpoint(runtime) == 1000  # SQLite's own, until a checkpointer runs
        # The checkpointer runs rarely here: what the commits write stays in the WAL until it does.
        checkpointer = recorder.checkpoint_beside_commits(str(path), interval=3600)
        assert _autocheckpoint(runtime) == 0  # a pooled connection set up again before its next use
        _define_tasks(runtime, 300)  # far more than 1000 pages of WAL
        wal = Path(f"{path}-wal")
        with sqlite3.connect(path) as reader:
            pages = reader.execute("PRAGMA wal_checkpoint(NOOP)").fetchone()[1]
        assert pages > 1000, "a commit checkpointed the WAL"
        assert wal.stat().st_size > 1000 * 4096

        # Its turn: what no reader needs goes back into the database, and the WAL starts over.
        with sqlite3.connect(path, isolation_level=None) as connection:
            busy, in_wal, copied = checkpointer.checkpoint(connection)
        assert busy == 0 and copied == in_wal and in_wal >= pages
        _define_tasks(runtime, 1)
        with sqlite3.connect(path) as reader:
            assert reader.execute("PRAGMA wal_checkpoint(NOOP)").fetchone()[1] < 100  # begun again

        recorder.checkpoint_with_commits(checkpointer)
        assert _autocheckpoint(runtime) == 1000
        assert not checkpointer._thread.is_alive()
    finally:
        runtime.close()


def test_the_checkpointer_runs_every_interval(tmp_path: Path) -> None:
    path = tmp_path / "cairn.db"
    runtime = Runtime(settings_for(f"sqlite:///{path}", tmp_path))
    checkpointer = runtime.log.recorder.checkpoint_beside_commits(str(path), interval=0.05)
    try:
        _define_tasks(runtime, 50)
        wait_for(lambda: checkpointer.last is not None and checkpointer.last[2] > 0, 10, "a checkpoint copying pages")
        runs = checkpointer.checkpoints
        wait_for(lambda: checkpointer.checkpoints >= runs + 3, 10, "more turns")
    finally:
        runtime.log.recorder.checkpoint_with_commits(checkpointer)
        runtime.close()


def test_a_serving_runtime_checkpoints_beside_its_commits_on_sqlite_only(server: Any) -> None:
    runtime = server.runtime
    if runtime.settings.backend == "sqlite":
        assert runtime.wal_checkpointer is not None and runtime.wal_checkpointer._thread.is_alive()
        assert _autocheckpoint(runtime) == 0
        assert os.path.exists(runtime.settings.sqlite_path + "-wal")
    else:
        assert runtime.wal_checkpointer is None


def _wal_pages(path: Path) -> int:
    wal = Path(f"{path}-wal")
    return wal.stat().st_size // 4096 if wal.exists() else 0


def test_a_long_wal_starts_again_once_its_readers_are_done(tmp_path: Path) -> None:
    path = tmp_path / "cairn.db"
    runtime = Runtime(settings_for(f"sqlite:///{path}", tmp_path))
    checkpointer = runtime.log.recorder.checkpoint_beside_commits(str(path), interval=3600, restart_pages=500)
    try:
        _define_tasks(runtime, 200)
        assert _wal_pages(path) > 1000
        with sqlite3.connect(path, isolation_level=None) as connection:
            connection.execute("PRAGMA busy_timeout = 200")
            reader = sqlite3.connect(path, isolation_level=None)
            reader.execute("BEGIN")
            reader.execute("SELECT count(*) FROM tasks").fetchone()  # reads a snapshot in the WAL
            busy, _, _ = checkpointer.checkpoint(connection)
            assert busy == 1 and checkpointer.restarts_busy == 1  # it waited, then left the reader its pages
            reader.execute("COMMIT")
            reader.close()
            busy, in_wal, copied = checkpointer.checkpoint(connection)
            assert busy == 0 and copied == in_wal > 1000 and checkpointer.restarts == 1
        _define_tasks(runtime, 1)  # the next commit writes the WAL from its beginning, the file cut back
        with sqlite3.connect(path) as reader:
            assert reader.execute("PRAGMA wal_checkpoint(NOOP)").fetchone()[1] < 100
            assert reader.execute("SELECT count(*) FROM tasks").fetchone()[0] == 201  # nothing lost
        assert _wal_pages(path) <= 500
    finally:
        runtime.log.recorder.checkpoint_with_commits(checkpointer)
        runtime.close()


def test_under_steady_writes_and_reads_the_wal_stays_short(tmp_path: Path) -> None:
    """A passive checkpoint alone never completes while commits and reads keep coming: the WAL grew
    without end (3.8 GB after 20,000 task lifecycles under the bench's load)."""
    path = tmp_path / "cairn.db"
    runtime = Runtime(settings_for(f"sqlite:///{path}", tmp_path))
    checkpointer = runtime.log.recorder.checkpoint_beside_commits(str(path), interval=0.02, restart_pages=300)
    stop = threading.Event()
    longest = [0]

    def read() -> None:
        while not stop.is_set():
            with runtime.log.recorder.raw_connection() as connection:
                connection.execute("SELECT count(*) FROM tasks").fetchone()

    def watch() -> None:
        while not stop.is_set():
            longest[0] = max(longest[0], _wal_pages(path))
            time.sleep(0.005)

    helpers = [threading.Thread(target=read) for _ in range(2)] + [threading.Thread(target=watch)]
    writers = [threading.Thread(target=_define_tasks, args=(runtime, 600)) for _ in range(3)]
    try:
        for thread in helpers + writers:
            thread.start()
        for thread in writers:
            thread.join(120)
        stop.set()
        for thread in helpers:
            thread.join(10)
        assert checkpointer.restarts >= 2
        # Without restarting checkpoints the WAL of these 1,800 tasks grew to 15,500-25,400 pages
        # (passive ones let it start again only now and then); with them its longest was 2,400-6,200,
        # the most on a machine busy with the whole suite.
        assert 300 < longest[0] < 10_000, (longest[0], checkpointer.restarts, checkpointer.restarts_busy)
    finally:
        stop.set()
        runtime.log.recorder.checkpoint_with_commits(checkpointer)
        runtime.close()
