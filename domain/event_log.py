"""The one ordered log of every change in Cairn, and the unit of work around it.

All aggregates (tasks, clients, roles, hooks, secrets) are saved in one
eventsourcing application, so they share one notification sequence: the
position of an event in that sequence is its position in the log, used by
every consumer, the event stream and replay.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError, Transcoder

from cairn.domain.event_codec import OrjsonTranscoder

T = TypeVar("T")


class ConcurrentChange(Exception):
    """The entity was changed by another request at the same time; try again."""


class Transactional(Protocol):
    def unit_of_work(self) -> Any: ...
    def reading(self) -> Any: ...


class EventLog(Application[str]):
    name = "cairn"

    def construct_transcoder(self) -> Transcoder:
        return OrjsonTranscoder()

    @property
    def store(self) -> Transactional:
        return self.recorder  # type: ignore[return-value]

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """One database transaction for events and the views that decide commands."""
        with self.store.unit_of_work() as session:
            yield session

    def get(self, aggregate_id: str) -> Any | None:
        try:
            return self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None

    def command(self, fn: Callable[[], T], attempts: int = 5) -> T:
        """Run ``fn`` in a transaction, again if another writer got there first.

        ``fn`` must load what it changes inside the call, so that a retry
        decides afresh on the state the winner left.
        """
        for attempt in range(attempts):
            try:
                with self.transaction():
                    return fn()
            except IntegrityError:
                if attempt == attempts - 1:
                    raise ConcurrentChange() from None
                time.sleep(0.002 * (attempt + 1))
        raise AssertionError("unreachable")

    def _record(self, processing_event: Any) -> Any:
        # Write-side views fold the domain events (not their stored bytes), and
        # may read the state the aggregates reached.
        processing_event.saved_kwargs["view_events"] = processing_event.events
        processing_event.saved_kwargs["aggregates"] = processing_event.aggregates
        return super()._record(processing_event)
