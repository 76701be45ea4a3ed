"""What the domain's application services need of the event log.

Every aggregate (tasks, clients, roles, ...) is saved in one log, so all of
them share one notification sequence: the position of an event in it is its
position for every consumer, the event stream and replay. The log itself,
kept by the eventsourcing library in SQLite or PostgreSQL, lives in the
storage package (``projections/store/event_log.py``); services see only this.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class ConcurrentChange(Exception):
    """The entity was changed by another request at the same time; try again."""


class EventLog(Protocol):
    def get(self, aggregate_id: str, version: int | None = None) -> Any | None:
        """The aggregate with this id, or None if it has no events.

        ``version``: the aggregate's stored version as a read in the current
        transaction found it (0: it has none), when the caller has one; the
        log may then skip reading its events."""
        ...

    def save(self, *objs: Any, **kwargs: Any) -> Any:
        """Record the new events of these aggregates (and these events), in the current transaction."""
        ...

    def command(self, fn: Callable[[], T], attempts: int = 5) -> T:
        """Run ``fn`` in one transaction, again if another writer got there first;
        ``ConcurrentChange`` if it never wins."""
        ...
