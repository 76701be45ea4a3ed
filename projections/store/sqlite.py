"""The embedded SQLite event store, with the same unit-of-work contract as PostgreSQL.

A unit of work holds this process's writer lock and opens its connection
with ``BEGIN IMMEDIATE``, so writers queue here instead of failing on
SQLite's lock upgrade (and another process waits on SQLite's busy timeout).
Readers use their own connections (WAL mode) and see only committed state.
The lock is ours rather than the library pool's writer interlock: a writer
must still be able to take a reader connection to load an aggregate, and the
pool serialises every connection request behind a thread waiting to write.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from eventsourcing.persistence import IntegrityError, OperationalError, StoredEvent

from cairn.projections.store import eventsourcing_adapter as adapter
from cairn.projections.store.base import EventStore
from cairn.projections.store.queries import load_schema
from cairn.projections.store.session import SqlSession

log = logging.getLogger("cairn.store")

#: Seconds between the checkpoints of a ``WalCheckpointer``.
CHECKPOINT_INTERVAL = 1.0
#: Bytes per page of Cairn's databases (SQLite's default page size).
PAGE_BYTES = 4096
#: Pages the WAL may hold after a passive checkpoint before a
#: ``WalCheckpointer`` waits for its readers so that it starts again (64 MiB).
RESTART_PAGES = 16_384
#: Milliseconds a restarting checkpoint may hold writers back while it waits for readers.
RESTART_WAIT_MS = 200


class CairnSQLiteRecorder(EventStore, adapter.LibrarySQLiteRecorder):
    dialect = "sqlite"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._writer = threading.Lock()

    #: Pages the WAL may hold before a commit copies them back into the
    #: database (SQLite's automatic checkpoint, 1000 by default); 0 while a
    #: ``WalCheckpointer`` does that beside the commits.
    autocheckpoint_pages = 1000
    #: Bytes a WAL file is cut back to when it starts again (SQLite's ``journal_size_limit``);
    #: -1 keeps it as long as it grew.
    wal_size_limit = -1

    def configure_connection(self, connection: sqlite3.Connection) -> None:
        # WAL with synchronous=NORMAL: a commit survives the process being
        # killed (it is in the WAL file); only a power cut or OS crash can
        # lose the last commits, never corrupt the database. FULL would
        # cost an fsync per commit, which is PostgreSQL's job in production.
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute(f"PRAGMA wal_autocheckpoint={int(self.autocheckpoint_pages)}")
        connection.execute(f"PRAGMA journal_size_limit={int(self.wal_size_limit)}")

    def checkpoint_beside_commits(
        self, path: str, interval: float = CHECKPOINT_INTERVAL, restart_pages: int = RESTART_PAGES
    ) -> WalCheckpointer:
        """Stop commits from checkpointing the WAL of the database at ``path``; a thread does it every
        ``interval`` seconds instead (``WalCheckpointer``). A WAL that starts again is cut back to
        ``restart_pages``."""
        checkpointer = WalCheckpointer(path, interval, restart_pages)
        checkpointer.start()
        self.autocheckpoint_pages = 0
        self.wal_size_limit = restart_pages * PAGE_BYTES
        self.connection_generation += 1
        return checkpointer

    def checkpoint_with_commits(self, checkpointer: WalCheckpointer) -> None:
        """Undo ``checkpoint_beside_commits``: commits checkpoint again, the thread stops."""
        self.autocheckpoint_pages = type(self).autocheckpoint_pages
        self.wal_size_limit = type(self).wal_size_limit
        self.connection_generation += 1
        checkpointer.stop()

    def view_schema(self) -> list[str]:
        return load_schema(self.dialect)

    @contextmanager
    def _transaction(self, one_flight: bool = False) -> Iterator[sqlite3.Cursor]:
        # In the process: no flights to save.
        with self._writer, self.raw_connection() as raw:
            cursor = raw.cursor()
            try:
                cursor.execute("BEGIN IMMEDIATE")
                yield cursor
                raw.commit()
            except sqlite3.IntegrityError as e:
                raw.rollback()
                raise IntegrityError(e) from e
            except sqlite3.OperationalError as e:
                raw.rollback()
                raise OperationalError(e) from e
            except BaseException:
                raw.rollback()
                raise

    @contextmanager
    def _read_cursor(self) -> Iterator[sqlite3.Cursor]:
        with self.raw_connection() as raw:
            yield raw.cursor()

    def _insert(self, session: SqlSession, stored_events: Sequence[StoredEvent]) -> Any:
        ids = self.insert_rows(session.cursor, stored_events)
        session.placed_in_log()
        return ids


class WalCheckpointer:
    """Copies the WAL's new pages back into the database file, in a thread of its own.

    By default the commit that takes the WAL past 1000 pages does this
    itself: the copy and two fsyncs, while the committing request (on
    SQLite, often the event loop: ``api/request_threads.py``) and every
    other writer wait. A serving process moves that here. A passive
    checkpoint waits for no reader or writer: it copies what no reader
    still needs. The next commit after a complete one starts the WAL from
    its beginning again; but under steady load one never is complete (there
    are always newer commits, and readers of them), and the WAL would grow
    without end: 3.8 GB after 20,000 task lifecycles, its index mapped into
    the process's memory. So once a passive checkpoint leaves more than
    ``restart_pages`` pages in the WAL, a restarting one follows: it holds
    writers back while it copies the rest and waits, at most
    ``RESTART_WAIT_MS``, for the readers of the WAL to finish; the next
    commit then writes the WAL from its beginning again (and cuts the file
    back to ``restart_pages``: ``journal_size_limit``). Reusing the file
    costs less than emptying it (a TRUNCATE checkpoint), which had every
    page of it allocated again. One that cannot have its readers in time
    does what a passive one does and is tried again at the next turn. A
    checkpoint that fails is logged and tried again at the next turn.
    """

    def __init__(self, path: str, interval: float = CHECKPOINT_INTERVAL, restart_pages: int = RESTART_PAGES):
        self.path = path
        self.interval = interval
        self.restart_pages = restart_pages
        #: Checkpoints that ran, and the last one's (busy, WAL pages, pages copied).
        self.checkpoints = 0
        self.last: tuple[int, int, int] | None = None
        #: Restarting checkpoints that had the WAL start again, and those that found readers to the end of their wait.
        self.restarts = 0
        self.restarts_busy = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="cairn-wal-checkpoint")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(10)

    def _run(self) -> None:
        connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            connection.execute(f"PRAGMA busy_timeout = {RESTART_WAIT_MS}")
            while not self._stop.wait(self.interval):
                try:
                    self.checkpoint(connection)
                except sqlite3.Error:
                    log.warning("checkpointing the SQLite WAL failed; trying again", exc_info=True)
        finally:
            connection.close()

    def checkpoint(self, connection: sqlite3.Connection) -> tuple[int, int, int]:
        """A passive checkpoint, and a restarting one if the WAL is still over ``restart_pages`` long."""
        self.last = self._run_checkpoint(connection, "PASSIVE")
        if self.last[1] > self.restart_pages:
            self.last = self._run_checkpoint(connection, "RESTART")
            if self.last[0]:
                self.restarts_busy += 1
            else:
                self.restarts += 1
        return self.last

    def _run_checkpoint(self, connection: sqlite3.Connection, mode: str) -> tuple[int, int, int]:
        row = connection.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
        self.checkpoints += 1
        return int(row[0]), int(row[1]), int(row[2])


class CairnSQLiteFactory(adapter.LibrarySQLiteFactory):
    application_recorder_class = CairnSQLiteRecorder
