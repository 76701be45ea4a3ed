"""Running named queries on the cursor of the current transaction."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from cairn.projections.store.combined_writes import CombinedWrites
from cairn.projections.store.queries import Query


class Cursor(Protocol):
    def execute(self, sql: Any, params: Any = ...) -> Any: ...
    def fetchall(self) -> list[Any]: ...


class SqlSession:
    """A cursor plus the back end's named queries: ``run``, ``rows``, ``one``."""

    def __init__(
        self, cursor: Cursor, queries: Mapping[str, Query], dialect: str, combiner: CombinedWrites | None = None
    ):
        self.cursor = cursor
        self.queries = queries
        self.dialect = dialect
        self.after_commit: list[Callable[[], None]] = []
        self.in_log_order: list[tuple[str, Mapping[str, Any]]] = []
        #: Where the back end can join writes into fewer statements (``combined_writes.py``).
        self.combiner = combiner
        self._held: list[tuple[Query, Mapping[str, Any]]] | None = None
        self._deferred: list[tuple[Query, Mapping[str, Any]]] = []
        #: Whether a write has been sent (or handed to the back end to send):
        #: a unit of work that fails after one must be rolled back, not just
        #: left (see ``EventStore.unit_of_work``).
        self.wrote = False

    def hold_writes(self) -> None:
        """From now on, ``run`` holds its writes, to send them joined (if the back end can).

        Held writes go before anything else the session runs, in their order,
        and at ``release_writes``. While they are held, ``run`` returns -1,
        not a row count.
        """
        if self.combiner is not None:
            self._held = []

    def release_writes(self) -> None:
        """Send what is held, and hold no more."""
        self._send_held()
        self._held = None

    def drop_writes(self) -> None:
        """Forget what is held (the transaction is being rolled back), and hold no more."""
        self._held = None

    def take_writes(self) -> tuple[list[tuple[Query, Mapping[str, Any]]], list[tuple[Query, Mapping[str, Any]]]]:
        """What is held (the deferred first) and what waits for log order, no longer
        kept here: the back end sends them, in that order, and holds no more."""
        held = self._deferred + (self._held or [])
        logged = [(self.queries[name], params) for name, params in self.in_log_order]
        self._held, self._deferred, self.in_log_order = None, [], []
        self.wrote = True
        return held, logged

    def _send_held(self) -> None:
        if self._held:
            held, self._held, self._deferred = self._deferred + self._held, [], []
            self.wrote = True
            assert self.combiner is not None
            self.combiner.send(self.cursor, held)

    def on_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once the transaction has committed (never if it rolls back)."""
        if callback not in self.after_commit:
            self.after_commit.append(callback)

    def committed(self) -> None:
        callbacks, self.after_commit = self.after_commit, []
        for callback in callbacks:
            callback()

    #: Replaying the log, where the boundaries of the original saves are not
    #: recorded, queries deferred to log order run right after their event.
    eager_log_order = False

    def run_in_log_order(self, name: str, params: Mapping[str, Any]) -> None:
        """Run a query once this transaction holds its place in the log.

        For rows whose autoincrement order means something (the pending
        queue's first-in, first-out): inserted after the events are, under
        the log's lock, concurrent transactions number them in the order the
        log records, and a rebuild reproduces that order exactly. Nothing
        reads their results, so on PostgreSQL they travel in the round trip
        that inserts the events.
        """
        self.in_log_order.append((name, params))

    def placed_in_log(self, cursor: Cursor | None = None) -> None:
        """Run the queries deferred to log order: on ``cursor`` if given, else as ``run`` does."""
        queued, self.in_log_order = self.in_log_order, []
        self.wrote = self.wrote or bool(queued)
        if cursor is not None and self.combiner is not None:
            self.combiner.send(cursor, [(self.queries[name], params) for name, params in queued])
            return
        for name, params in queued:
            if cursor is None:
                self.run(name, params)
            else:
                cursor.execute(self.queries[name].sql, params)

    def run(self, name: str, params: Mapping[str, Any] | None = None) -> int:
        if self._held is not None:
            self._held.append((self.queries[name], params or {}))
            return -1
        self.wrote = True
        self.cursor.execute(self.queries[name].sql, params or {})
        return self.cursor.rowcount

    def defer(self, name: str, params: Mapping[str, Any]) -> None:
        """Run a write that nothing in the transaction reads, nor its result, before the commit.

        It goes with the first writes ``hold_writes`` sends, joined with them
        where the back end can, or else on its own right before the commit;
        if it fails, the transaction does.
        """
        self._deferred.append((self.queries[name], params))

    def send_deferred(self) -> None:
        """The unit of work is about to commit: what is deferred goes now."""
        deferred, self._deferred = self._deferred, []
        if not deferred:
            return
        self.wrote = True
        if self.combiner is not None:
            self.combiner.send(self.cursor, deferred)
            return
        for query, params in deferred:
            self.cursor.execute(query.sql, params)

    def rows(self, name: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        self._send_held()
        self.cursor.execute(self.queries[name].sql, params or {})
        return [dict(row) for row in self.cursor.fetchall()]

    def rows_together(self, queries: Sequence[tuple[str, Mapping[str, Any]]]) -> list[list[dict[str, Any]]]:
        """The rows of several queries, run one after another in this order.

        In a unit of work in one flight (PostgreSQL's pipeline mode) they
        are sent together and answered in one round trip; each still runs
        as a statement of its own, on a snapshot taken when it starts, so a
        query after one that waited on a row lock sees what the lock's
        holder committed.
        """
        self._send_held()
        cursors = []
        for name, params in queries:
            cursor = self.cursor.connection.cursor()
            cursor.execute(self.queries[name].sql, params)
            cursors.append(cursor)
        return [[dict(row) for row in cursor.fetchall()] for cursor in cursors]

    def one(self, name: str, params: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
        found = self.rows(name, params)
        return found[0] if found else None

    def execute_sql(self, sql: str) -> None:
        """Run literal DDL (schema creation, table swaps); never user input."""
        self._send_held()
        self.wrote = True
        self.cursor.execute(sql)


#: A write-side view: folds a batch of new events into its tables, inside the
#: transaction that records them. It also gets the aggregates those events
#: belong to, in the state the events left them ({aggregate id: aggregate}).
ViewWriter = Callable[[SqlSession, Iterable[Any], Mapping[str, Any]], None]
