"""What the SQLite and PostgreSQL event stores share: the unit of work, reads, and a save.

``unit_of_work()`` opens one transaction and makes it current for this
context; every event insert and every view write inside it shares that
transaction, so a command's events and the views that decide later commands
(the pending queue, dependency waits) commit together or not at all.
``reading()`` joins the current transaction, or reads on a connection of its
own. A back end says how to open each (``_transaction``, ``_read_cursor``)
and how to insert the events (``_insert``); the rest is here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar
from typing import Any

from eventsourcing.persistence import StoredEvent

from cairn.projections.store.combined_writes import CombinedWrites
from cairn.projections.store.queries import Query, load_queries
from cairn.projections.store.session import Cursor, SqlSession, ViewWriter


class EventStore:
    """Mixed in before a library recorder: Cairn's transactions around its inserts."""

    dialect: str
    queries: dict[str, Query]
    view_writers: list[ViewWriter]
    #: Joins a unit of work's writes into fewer statements, where the back end can.
    combiner: CombinedWrites | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queries = load_queries(self.dialect)
        self.view_writers = []
        #: Called with the session of each new unit of work, before anything
        #: else runs in it (the deferred Hawk nonce: ``hawk_nonces.py``).
        self.begin_hooks: list[Callable[[SqlSession], None]] = []
        self._current: ContextVar[SqlSession | None] = ContextVar(
            f"cairn-{self.dialect}-session-{id(self)}", default=None
        )

    def current_session(self) -> SqlSession | None:
        """The session of the unit of work this context is in, if any."""
        return self._current.get()

    @contextmanager
    def unit_of_work(self, one_flight: bool = False) -> Iterator[SqlSession]:
        """The current unit of work, or a new one.

        ``one_flight`` (a command's): where the back end can, the
        transaction's writes are not sent one by one but queued, and go in
        one flight at the end, which also commits them. Only for code that
        reads results and never needs a write's outcome (a row count, an
        error) before the commit: an error surfaces at the next read or at
        the commit, and rolls it all back.
        """
        current = self._current.get()
        if current is not None:
            yield current
            return
        with self._transaction(one_flight) as cursor:
            session = SqlSession(cursor, self.queries, self.dialect, self.combiner)
            token = self._current.set(session)
            try:
                for hook in self.begin_hooks:
                    hook(session)
                yield session
                session.send_deferred()
            except BaseException:
                if session.wrote:
                    self._abandon(cursor)
                raise
            finally:
                self._current.reset(token)
        session.committed()

    def _abandon(self, cursor: Cursor) -> None:
        """A unit of work failed after sending writes: make sure its transaction cannot commit.

        By default the transaction's own context rolls it back on the way out."""

    #: Whether a statement sent outside a unit of work commits by itself (``write_alone``).
    statements_commit_alone = False

    def write_alone(self, name: str, params: dict[str, Any]) -> None:
        """One write that nothing else goes with (a follower's position): in the current
        unit of work if there is one, else committed by itself, as one statement where
        the back end commits each statement on its own (no BEGIN, no COMMIT)."""
        if self._current.get() is not None or not self.statements_commit_alone:
            with self.unit_of_work() as session:
                session.run(name, params)
            return
        with self._read_cursor() as cursor:
            cursor.execute(self.queries[name].sql, params)

    @contextmanager
    def reading(self) -> Iterator[SqlSession]:
        """A session for reads: the current transaction, or a fresh autocommit one."""
        current = self._current.get()
        if current is not None:
            yield current
            return
        with self._read_cursor() as cursor:
            yield SqlSession(cursor, self.queries, self.dialect)

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        """Fold a save into the write-side views, then record its events, in one unit of work."""
        domain_events = kwargs.get("view_events", ())
        aggregates = kwargs.get("aggregates", {})
        with self.unit_of_work() as session:
            # Views first, the log's lock last: the lock is then held only
            # from the insert to the commit, and never while waiting on a row.
            with self._batched(session):
                for write in self.view_writers:
                    write(session, domain_events, aggregates)
                if not stored_events:
                    return []
                inserted = self._insert(session, stored_events)
            return self._inserted_ids(session, stored_events, inserted)

    # --- what a back end provides

    def _transaction(self, one_flight: bool = False) -> AbstractContextManager[Cursor]:
        """A cursor in a new transaction, committed when the block ends, rolled back if it raises
        (``one_flight``: see ``unit_of_work``)."""
        raise NotImplementedError

    def _read_cursor(self) -> AbstractContextManager[Cursor]:
        """A cursor outside any transaction of this context."""
        raise NotImplementedError

    def _batched(self, session: SqlSession) -> AbstractContextManager[Any]:
        """Around a save's view writes and insert: where a back end may send them together."""
        return nullcontext()

    def _insert(self, session: SqlSession, stored_events: Sequence[StoredEvent]) -> Any:
        """Insert the events, then run the queries deferred to log order (``SqlSession.placed_in_log``)."""
        raise NotImplementedError

    def _inserted_ids(self, session: SqlSession, stored_events: Sequence[StoredEvent], inserted: Any) -> Any:
        """The notification ids of the events ``_insert`` inserted."""
        return inserted
