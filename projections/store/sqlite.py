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


class CairnSQLiteRecorder(EventStore, adapter.LibrarySQLiteRecorder):
    dialect = "sqlite"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._writer = threading.Lock()

    def configure_connection(self, connection: sqlite3.Connection) -> None:
        # WAL with synchronous=NORMAL: a commit survives the process being
        # killed (it is in the WAL file); only a power cut or OS crash can
        # lose the last commits, never corrupt the database. FULL would
        # cost an fsync per commit, which is PostgreSQL's job in production.
        connection.execute("PRAGMA synchronous=NORMAL")

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


class CairnSQLiteFactory(adapter.LibrarySQLiteFactory):
    application_recorder_class = CairnSQLiteRecorder
