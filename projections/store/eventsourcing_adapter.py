"""Every name Cairn takes from inside the eventsourcing library, in one place.

Cairn keeps the library's log, recorders and aggregates, and reaches past
their public API where that saves time on the hot path or joins the
library's transaction to Cairn's: the steps of ``Application.save``, the
recorders' insert hooks, the SQLite pool's raw connections, the
bookkeeping behind ``@event`` methods. Those names are private and may
change in any release, so they are used here only, by the version range
below (as pinned in pyproject.toml), and ``tests/store/test_eventsourcing_adapter.py``
checks that each of them still exists with the signature relied on.
Everything else in Cairn uses the functions and classes of this module.

(One more sits in ``domain/aggregate.py``, which may not import this
package: ``BaseAggregate._create`` is overridden to stamp the actor. It is
listed in ``PRIVATE_NAMES`` so that the same test watches it.)
"""

from __future__ import annotations

import inspect
import sqlite3
import threading
import types
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from eventsourcing import domain as library_domain
from eventsourcing import persistence as library_persistence
from eventsourcing import postgres as library_postgres
from eventsourcing import sqlite as library_sqlite
from eventsourcing.application import Application, ProcessingEvent
from eventsourcing.persistence import StoredEvent, find_id_convertor, pass_through_convertor

from cairn.projections.store.loop_greenlets import blocking, on_loop

#: The releases this module is written against: the range pinned in pyproject.toml.
SUPPORTED_VERSIONS = (">=9.5", "<9.6")

#: (owner, name, the parameters relied on, or None for an attribute) for every private name used.
PRIVATE_NAMES: tuple[tuple[Any, str, tuple[str, ...] | None], ...] = (
    (Application, "_record", ("self", "processing_event")),
    (Application, "_take_snapshots", ("self", "processing_event")),
    (Application, "_notify", ("self", "recordings")),
    (ProcessingEvent, "__init__", ("self", "tracking")),
    (library_sqlite.SQLiteApplicationRecorder, "_insert_events", ("self", "c", "stored_events")),
    (library_sqlite.SQLiteApplicationRecorder, "construct_create_table_statements", ("self",)),
    (library_sqlite.SQLiteConnectionPool, "get_connection", ("self", "timeout", "is_writer")),
    (library_sqlite.SQLiteConnectionPool, "put_connection", ("self", "conn")),
    (library_sqlite.SQLiteConnectionPool, "_create_connection", ("self",)),
    (library_sqlite.SQLiteConnection, "__init__", ("self", "sqlite_conn", "max_age")),
    (library_sqlite, "SQLITE3_DEFAULT_LOCK_TIMEOUT", None),
    (library_postgres.PostgresApplicationRecorder, "_insert_stored_events", ("self", "curs", "stored_events")),
    (library_postgres.PostgresApplicationRecorder, "_fetch_ids_after_insert_events", ("self", "curs", "stored_events")),
    (library_persistence, "find_id_convertor", ("domain_event_cls", "originator_id_cls")),
    (library_persistence, "pass_through_convertor", ("originator_id",)),
    (library_domain.CanMutateAggregate, "mutate", ("self", "aggregate")),
    (library_domain.CanMutateAggregate, "apply", ("self", "aggregate")),
    (library_domain.CanInitAggregate, "mutate", ("self", "aggregate")),
    (library_domain.DecoratedFuncCaller, "apply", ("self", "aggregate")),
    (library_domain, "decorated_funcs", None),
    (library_domain, "_init_mentions_id", None),
    (library_domain, "DecoratedFuncCaller", None),
    (library_domain.BaseAggregate, "__base_init__", ("self", "originator_id", "originator_version", "timestamp")),
    (library_domain.BaseAggregate, "_create", ("cls", "event_class", "id")),
)

#: Instance attributes set by the library's constructors, relied on by name.
PRIVATE_ATTRIBUTES = {
    "ProcessingEvent": ("events", "aggregates", "saved_kwargs"),
    "SQLiteConnection": ("_sqlite_conn",),
    "SQLiteConnectionPool": (
        "db_name", "lock_timeout", "max_age", "is_sqlite_memory_mode", "is_journal_mode_wal",
        "journal_mode_was_changed_to_wal",
    ),
    "SQLiteDatastore": ("pool",),
    "PostgresApplicationRecorder": ("lock_table_statements", "select_events_statement"),
    "PostgresDatastore": ("pool",),
}


class LibraryApplication(Application[str]):
    """The library's application, saving through its own steps less their checks.

    A save passes the domain events and the aggregates they leave to the
    recorder (as ``view_events`` and ``aggregates``), so that write-side
    views fold the events themselves, not their stored bytes.
    """

    def save(self, *objs: Any, **kwargs: Any) -> Any:
        """As the library's save, less its runtime-protocol checks (about 10 µs each, two per aggregate).

        An object with ``collect_events`` is an aggregate; anything else is a
        domain event, saved as it is.
        """
        processing_event: ProcessingEvent[str] = ProcessingEvent()
        events, aggregates = processing_event.events, processing_event.aggregates
        for obj in objs:
            if obj is None:
                continue
            if getattr(type(obj), "collect_events", None) is None:
                events.append(obj)
            else:
                events.extend(obj.collect_events())
                aggregates[obj.id] = obj
        processing_event.saved_kwargs.update(kwargs)
        recordings = self._record(processing_event)
        self._take_snapshots(processing_event)
        self._notify(recordings)
        return recordings

    def _record(self, processing_event: Any) -> Any:
        processing_event.saved_kwargs["view_events"] = processing_event.events
        processing_event.saved_kwargs["aggregates"] = processing_event.aggregates
        return super()._record(processing_event)


def decodes_as_stored(event_class: type) -> bool:
    """Whether events of ``event_class`` decode as they are stored: ids as text, no upcasting."""
    return (
        getattr(event_class, "class_version", 1) == 1
        and find_id_convertor(event_class, str) is pass_through_convertor
    )


# --- recorders


class _ThreadConnection:
    """The connection one thread keeps; its lock is held while the thread uses it."""

    __slots__ = ("connection", "lock", "closed", "__weakref__")

    def __init__(self, connection: library_sqlite.SQLiteConnection):
        self.connection = connection
        self.lock = threading.Lock()
        self.closed = False


class LibrarySQLiteRecorder(library_sqlite.SQLiteApplicationRecorder):
    """The library's SQLite recorder, with its raw connections and insert at hand.

    Each thread uses a connection of its own, made by the library's pool
    but kept out of it. The pool hands its connections out in turn, and
    SQLite drops a connection's page cache whenever another connection has
    committed since its last use: taking the next in turn, a command read
    every page it touched again (about 90 reads per task lifecycle under
    load, ``bench/README.md``). A thread's own connection keeps its cache
    across its own commits. A thread that asks for a second connection while
    using its own (a read beside its transaction) gets one of the pool, as
    before. A thread's connection is closed when the thread ends, or with
    the recorder (``close_thread_connections``), never while in use: sqlite3
    does not survive a connection closed under a statement.
    """

    #: Bumped when connections must be set up again (``configure_connection``) before their next use.
    connection_generation = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._thread_connections = threading.local()
        self._all_thread_connections: weakref.WeakSet[_ThreadConnection] = weakref.WeakSet()

    @contextmanager
    def raw_connection(self) -> Iterator[sqlite3.Connection]:
        """A ``sqlite3`` connection: this thread's own, or if that is in use, one of the library's pool."""
        own = getattr(self._thread_connections, "own", None)
        if own is None:
            own = self._thread_connections.own = self._new_thread_connection()
        # Not to be had: this thread is using it already, or the recorder is closing it or has.
        taken = own.lock.acquire(blocking=False)
        if taken and own.closed:
            own.lock.release()
            taken = False
        if not taken:
            with self._pooled_connection() as connection:
                yield connection
            return
        try:
            self._configured(own.connection)
            yield own.connection._sqlite_conn
        finally:
            own.lock.release()

    @contextmanager
    def _pooled_connection(self) -> Iterator[sqlite3.Connection]:
        pool = self.datastore.pool
        conn = pool.get_connection(is_writer=None)
        self._configured(conn)
        try:
            yield conn._sqlite_conn
        finally:
            pool.put_connection(conn)

    def _new_thread_connection(self) -> _ThreadConnection:
        connection = self.datastore.pool._create_connection()
        own = _ThreadConnection(connection)
        # Closed when the thread ends (its locals go) or by close_thread_connections, whichever comes first.
        weakref.finalize(own, connection.close)
        self._all_thread_connections.add(own)
        return own

    def close_thread_connections(self, wait: float = 5.0) -> None:
        """Close every thread's own connection once it is not in use (the recorder is closing).

        One still in use after ``wait`` seconds is left to its thread: it closes when the thread ends.
        """
        for own in list(self._all_thread_connections):
            if own.lock.acquire(timeout=wait):
                try:
                    own.closed = True
                    own.connection.close()
                finally:
                    own.lock.release()

    def _configured(self, conn: Any) -> None:
        if getattr(conn, "cairn_configured", None) != self.connection_generation:
            self.configure_connection(conn._sqlite_conn)
            conn.cairn_configured = self.connection_generation

    def configure_connection(self, connection: sqlite3.Connection) -> None:
        """Set up a connection of the pool before its first use here, and again once ``connection_generation``
        has moved."""

    def insert_rows(self, cursor: Any, stored_events: Sequence[StoredEvent]) -> Sequence[int] | None:
        """Insert the events on ``cursor``; their notification ids."""
        return self._insert_events(cursor, stored_events)

    def construct_create_table_statements(self) -> list[str]:
        return super().construct_create_table_statements() + self.view_schema()

    def view_schema(self) -> list[str]:
        """DDL run after the library's own when the tables are created."""
        return []


class LibraryPostgresRecorder(library_postgres.PostgresApplicationRecorder):
    """The library's PostgreSQL recorder, with its insert and id fetch at hand."""

    @property
    def events_select(self) -> Any:
        """The library's query for one aggregate's events, before its range and order clauses."""
        return self.select_events_statement

    def insert_rows_unlocked(self, curs: Any, stored_events: Sequence[StoredEvent]) -> None:
        """The library's insert of ``stored_events``, as one array, without its lock and notify."""
        library_postgres.PostgresAggregateRecorder._insert_stored_events(self, curs, stored_events)

    def inserted_ids(self, curs: Any, stored_events: Sequence[StoredEvent]) -> Sequence[int] | None:
        """The notification ids an insert on ``curs`` returned."""
        return self._fetch_ids_after_insert_events(curs, stored_events)


#: Prepared statements each SQLite connection keeps (sqlite3's default is 128; Cairn names a few hundred queries).
STATEMENT_CACHE = 512


class StatementCachingSQLitePool(library_sqlite.SQLiteConnectionPool):
    """The library's SQLite pool, but for the statements its connections keep prepared.

    The library opens every connection with ``cached_statements=True``, which
    sqlite3 reads as a cache of one statement: each statement of a command
    was parsed and planned again at every use (under load on SQLite, a third
    of the server's CPU per task lifecycle: ``bench/README.md``). This makes
    connections as the library does (WAL, rows as ``sqlite3.Row``, the lock
    timeout) with a cache of ``STATEMENT_CACHE``.
    """

    def _create_connection(self) -> library_sqlite.SQLiteConnection:
        try:
            connection = sqlite3.connect(
                database=self.db_name,
                uri=True,
                check_same_thread=False,
                isolation_level=None,  # autocommit: transactions begin explicitly
                cached_statements=STATEMENT_CACHE,
                timeout=self.lock_timeout or library_sqlite.SQLITE3_DEFAULT_LOCK_TIMEOUT,
            )
        except (sqlite3.Error, TypeError) as e:
            raise library_persistence.InterfaceError(e) from e
        if not self.is_sqlite_memory_mode and not self.is_journal_mode_wal:
            if connection.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                connection.execute("PRAGMA journal_mode=WAL")
                self.journal_mode_was_changed_to_wal = True
            self.is_journal_mode_wal = True
        connection.row_factory = sqlite3.Row
        return library_sqlite.SQLiteConnection(sqlite_conn=connection, max_age=self.max_age)


class LibrarySQLiteFactory(library_sqlite.SQLiteFactory):
    """The library's SQLite factory, whose pool keeps its connections' statements prepared."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The pool makes its connections at first use: every one is made by the subclass.
        pool = self.datastore.pool
        if type(pool) is not library_sqlite.SQLiteConnectionPool or pool.num_in_pool:
            raise RuntimeError(f"the library made an SQLite pool unlike the one this adapter knows: {pool!r}")
        pool.__class__ = StatementCachingSQLitePool


class LoopAwarePostgresPool(library_postgres.ConnectionPool):  # type: ignore[type-arg]
    """The library's PostgreSQL pool, which does not make the event loop wait for a connection.

    A command run on the loop (``loop_greenlets.run_on_loop``) takes a free
    connection at once; when none is free, it waits for one on a thread of
    its own while the loop goes on (the connections it waits for may be held
    by other commands on the loop). Another thread may take the last free
    one between the look and the take: the loop then waits, as a thread
    would, until some thread gives one back or the pool has made another.
    """

    def getconn(self, timeout: float | None = None) -> Any:
        if on_loop() and not self.get_stats().get("pool_available"):
            return blocking(super().getconn, timeout, undo=self.putconn)
        return super().getconn(timeout)


class LibraryPostgresFactory(library_postgres.PostgresFactory):
    """The library's PostgreSQL factory, whose pool makes its connections of ``connection_class``
    and never makes the event loop wait for one (``LoopAwarePostgresPool``)."""

    #: None: the library's own.
    connection_class: type | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        pool = self.datastore.pool
        if type(pool) is not library_postgres.ConnectionPool:
            raise RuntimeError(f"the library made a PostgreSQL pool unlike the one this adapter knows: {pool!r}")
        pool.__class__ = LoopAwarePostgresPool
        if self.connection_class is not None:
            # The library makes its pool closed and opens it at first use,
            # so every connection the pool makes is of this class.
            self.datastore.pool.connection_class = self.connection_class


# --- folding events outside the library (rebuilds)


def event_method(event_class: type) -> types.FunctionType | None:
    """The ``@event`` method events of ``event_class`` apply by calling, if that is all they do."""
    method = library_domain.decorated_funcs.get(event_class)
    if (
        event_class.mutate is library_domain.CanMutateAggregate.mutate  # type: ignore[attr-defined]
        and event_class.apply is library_domain.DecoratedFuncCaller.apply  # type: ignore[attr-defined]
        and issubclass(event_class, library_domain.DecoratedFuncCaller)
        and super(library_domain.DecoratedFuncCaller, event_class).apply  # type: ignore[misc]
        is library_domain.CanMutateAggregate.apply
        and isinstance(method, types.FunctionType)
    ):
        return method
    return None


def creates_plainly(event_class: type) -> bool:
    """Whether events of ``event_class`` create an aggregate as the library's first event does."""
    return (
        event_class.mutate is library_domain.CanInitAggregate.mutate  # type: ignore[attr-defined]
        and event_class.apply is library_domain.CanMutateAggregate.apply  # type: ignore[attr-defined]
    )


def creation_parameters(aggregate_class: type) -> tuple[Callable[..., None], tuple[str, ...], tuple[str, ...], bool]:
    """What creating an ``aggregate_class`` takes: the library's base initialiser (called
    as ``base_init(new, **state)``) and its parameters, the class's own ``__init__``'s
    parameters, and whether that names the id."""
    base_init = aggregate_class.__base_init__  # type: ignore[attr-defined]
    return (
        base_init,
        tuple(inspect.signature(base_init).parameters),
        tuple(inspect.signature(aggregate_class.__init__).parameters),
        aggregate_class in library_domain._init_mentions_id,
    )
