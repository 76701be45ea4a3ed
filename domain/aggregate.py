"""The base of Cairn's aggregates: string ids, and events that say who caused them.

Every event in the log carries ``actor``, the clientId on whose behalf it was
recorded, next to the library's ``timestamp``. The actor is ambient: the API
sets it once per request with :func:`acting_as`, background processes set
their own, and recording an event with no actor is a programming error rather
than an anonymous entry in the audit trail.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import Any

from eventsourcing.domain import BaseAggregate, CanInitAggregate, CanMutateAggregate, MetaDomainEvent

_actor: ContextVar[str | None] = ContextVar("cairn_actor", default=None)


@contextmanager
def acting_as(client_id: str) -> Iterator[None]:
    """Record every event created in this block as caused by ``client_id``."""
    token = _actor.set(client_id)
    try:
        yield
    finally:
        _actor.reset(token)


def current_actor() -> str:
    actor = _actor.get()
    if not actor:
        raise RuntimeError("an event was recorded outside acting_as(): who caused it?")
    return actor


class CairnAggregate(BaseAggregate[str]):
    """An aggregate whose id is a readable string such as ``task/<taskId>``."""

    class Event(CanMutateAggregate[str], metaclass=MetaDomainEvent):
        originator_id: str
        originator_version: int
        timestamp: datetime
        actor: str

    class Created(CanInitAggregate[str], Event):
        originator_topic: str

    def trigger_event(self, event_class: type[Any], **kwargs: Any) -> None:
        kwargs.setdefault("actor", current_actor())
        super().trigger_event(event_class, **kwargs)

    @classmethod
    def _create(cls, event_class: type[Any], *, id: Any = None, **kwargs: Any) -> Any:
        kwargs.setdefault("actor", current_actor())
        return super()._create(event_class, id=id, **kwargs)
