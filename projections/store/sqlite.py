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
from contextvars import ContextVar
from typing import Any

from eventsourcing import sqlite as library
from eventsourcing.persistence import IntegrityError, OperationalError, StoredEvent

from cairn.projections.store.queries import load_queries, load_schema
from cairn.projections.store.session import SqlSession, ViewWriter


class CairnSQLiteRecorder(library.SQLiteApplicationRecorder):
    dialect = "sqlite"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queries = load_queries(self.dialect)
        self.view_writers: list[ViewWriter] = []
        self._current: ContextVar[SqlSession | None] = ContextVar(
            f"cairn-sqlite-session-{id(self)}", default=None
        )
        self._writer = threading.Lock()

    @contextmanager
    def _connection(self) -> Iterator[Any]:
        pool = self.datastore.pool
        conn = pool.get_connection(is_writer=None)
        if not getattr(conn, "cairn_configured", False):
            # WAL with synchronous=NORMAL: a commit survives the process being
            # killed (it is in the WAL file); only a power cut or OS crash can
            # lose the last commits, never corrupt the database. FULL would
            # cost an fsync per commit, which is PostgreSQL's job in production.
            conn._sqlite_conn.execute("PRAGMA synchronous=NORMAL")
            conn.cairn_configured = True
        try:
            yield conn
        finally:
            pool.put_connection(conn)

    def construct_create_table_statements(self) -> list[str]:
        return super().construct_create_table_statements() + load_schema(self.dialect)

    @contextmanager
    def unit_of_work(self) -> Iterator[SqlSession]:
        current = self._current.get()
        if current is not None:
            yield current
            return
        with self._writer, self._connection() as conn:
            raw = conn._sqlite_conn
            cursor = raw.cursor()
            session = SqlSession(cursor, self.queries, self.dialect)
            token = self._current.set(session)
            try:
                cursor.execute("BEGIN IMMEDIATE")
                yield session
                raw.commit()
                self._current.reset(token)
                token = None
                session.committed()
            except sqlite3.IntegrityError as e:
                raw.rollback()
                raise IntegrityError(e) from e
            except sqlite3.OperationalError as e:
                raw.rollback()
                raise OperationalError(e) from e
            except BaseException:
                raw.rollback()
                raise
            finally:
                if token is not None:
                    self._current.reset(token)

    @contextmanager
    def reading(self) -> Iterator[SqlSession]:
        current = self._current.get()
        if current is not None:
            yield current
            return
        with self._connection() as conn:
            yield SqlSession(conn._sqlite_conn.cursor(), self.queries, self.dialect)

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        domain_events = kwargs.get("view_events", ())
        aggregates = kwargs.get("aggregates", {})
        with self.unit_of_work() as session:
            for write in self.view_writers:
                write(session, domain_events, aggregates)
            ids = self._insert_events(session.cursor, stored_events)
            session.placed_in_log()
            return ids


class CairnSQLiteFactory(library.SQLiteFactory):
    application_recorder_class = CairnSQLiteRecorder

