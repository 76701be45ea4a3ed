"""A projection: a view folded from events, one handler per event type.

The same handlers serve both ways a view is kept: incrementally, inside the
transaction that records the events (write-side views that decide commands),
and from the log, when a view is rebuilt or verified.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from cairn.projections.sql_session import SqlSession

#: handler(session, event, aggregate): the aggregate is the state after the
#: batch of events being folded, or None when folding from the log alone.
EventHandler = Callable[[SqlSession, Any, Any], None]


class Projection:
    #: The name users give ``cairn projections rebuild``.
    name: str = ""
    #: The tables this projection owns, and nothing else writes.
    tables: tuple[str, ...] = ()

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
        for e in events:
            handler = handlers.get(type(e))
            if handler is not None:
                handler(session, e, aggregates.get(e.originator_id))

    def handles(self, event: Any) -> bool:
        return type(event) in self.handlers
