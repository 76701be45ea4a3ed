"""A projection: a view folded from events, one handler per event type.

The same handlers serve both ways a view is kept: incrementally, inside the
transaction that records the events (write-side views that decide commands),
and from the log, when a view is rebuilt or verified.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar

from cairn.projections.store.moved_topics import topics_of
from cairn.projections.store.session import SqlSession

#: handler(session, event, aggregate): the aggregate is the state after the
#: batch of events being folded, or None when folding from the log alone.
EventHandler = Callable[[SqlSession, Any, Any], None]


class Projection:
    #: The name users give ``cairn projections rebuild``.
    name: str = ""
    #: The tables this projection owns, and nothing else writes.
    tables: tuple[str, ...] = ()
    #: For ``cairn projections verify``, {table: (column, ...)}: columns whose
    #: values a rebuild cannot reproduce (autoincrement ids) and that are
    #: compared by the order they give the rows instead ...
    ordinal_columns: ClassVar[Mapping[str, tuple[str, ...]]] = {}
    #: ... columns left out of the comparison altogether (a table with none
    #: left to compare is not compared) ...
    ignored_columns: ClassVar[Mapping[str, tuple[str, ...]]] = {}
    #: ... and the columns that name a row in a report (default: its primary key).
    row_keys: ClassVar[Mapping[str, tuple[str, ...]]] = {}
    #: The event classes whose handlers may read the aggregate they are given
    #: (``reads_aggregate`` tells for each event), or None for every class. A
    #: rebuild folds aggregates only while a projection it replays reads them
    #: (``projections/rebuild/replay.py``); folding costs about as much as
    #: reading the log.
    aggregates_read_by: ClassVar[frozenset[type] | None] = None

    def reads_aggregate(self, event: Any) -> bool:
        """Whether the handler of ``event``, of a class in ``aggregates_read_by``, reads its aggregate."""
        return True

    def __init__(self) -> None:
        self.handlers: dict[type, EventHandler] = {}
        self.register()

    def register(self) -> None:
        """Fill ``self.handlers``: event class → handler."""

    def on(self, event_class: type, handler: EventHandler) -> None:
        self.handlers[event_class] = handler

    def __call__(
        self, session: SqlSession, events: Iterable[Any], aggregates: Mapping[str, Any] | None = None
    ) -> None:
        handlers = self.handlers
        aggregates = aggregates or {}
        placed_in_log = session.placed_in_log if session.eager_log_order else None
        for e in events:
            handler = handlers.get(type(e))
            if handler is not None:
                handler(session, e, aggregates.get(e.originator_id))
                if placed_in_log is not None:
                    placed_in_log()

    def handles(self, event: Any) -> bool:
        return type(event) in self.handlers

    def swapped_in(self, session: SqlSession, replaced: SqlSession) -> None:
        """Called by a rebuild in the transaction that swaps its tables in, once they are live.

        ``session`` runs the named queries on the rebuilt tables, ``replaced``
        on the tables they replace, dropped after this. For what a replay of
        the log cannot make alone.
        """


class FollowedProjection(Projection):
    """A read-side view: folded by a log follower from its tracked position.

    It is a consumer with the exactly-once guarantee — its rows and its
    position commit together — reading only the events it has handlers for.
    Its handlers get no aggregates: every row must follow from the events.
    """

    guarantee = "exactly-once"

    @property
    def topics(self) -> tuple[str, ...]:
        return topics_of(self.handlers)

    def handle(self, session: SqlSession, batch: Iterable[Any]) -> None:
        """Fold a follower's batch of logged events (``.position``, ``.event``)."""
        self(session, [logged.event for logged in batch])
