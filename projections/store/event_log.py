"""The one ordered log of every change in Cairn, and the unit of work around it.

All aggregates (tasks, clients, roles, hooks, secrets) are saved in one
eventsourcing application, so they share one notification sequence: the
position of an event in that sequence is its position in the log, used by
every consumer, the event stream and replay. Domain services know it by its
protocol, ``cairn.domain.event_log.EventLog``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Protocol, TypeVar

import orjson
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError, StoredEvent, Transcoder
from eventsourcing.utils import resolve_topic

from cairn.domain.event_log import ConcurrentChange
from cairn.projections.store.aggregate_cache import AggregateCache
from cairn.projections.store.codec import OrjsonTranscoder
from cairn.projections.store.eventsourcing_adapter import LibraryApplication, decodes_as_stored
from cairn.projections.store.loop_greenlets import pause
from cairn.projections.store.moved_topics import register_moved_modules

T = TypeVar("T")

register_moved_modules()

#: Commands in one pipelined flight (``EventStore.unit_of_work``): on
#: PostgreSQL, the reads in one flight and the writes in one more, all one
#: implicit transaction that the pipeline's end commits
#: (``CairnPostgresRecorder._connection_transaction``).
ONE_FLIGHT = True


class Transactional(Protocol):
    def unit_of_work(self, one_flight: bool = False) -> Any: ...
    def reading(self) -> Any: ...
    def current_session(self) -> Any: ...


class SqlEventLog(LibraryApplication):
    """The event log, kept by the eventsourcing library in SQLite or PostgreSQL
    (``PERSISTENCE_MODULE``: ``cairn.projections.store.sqlite`` or ``.postgres``)."""

    name = "cairn"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Aggregates as this process committed them: see ``aggregate_cache.py``.
        self.cache = AggregateCache()

    def close(self) -> None:
        close_thread_connections = getattr(self.recorder, "close_thread_connections", None)
        if close_thread_connections is not None:
            close_thread_connections()  # SQLite: each thread's own connection (eventsourcing_adapter.py)
        super().close()

    def construct_transcoder(self) -> Transcoder:
        return OrjsonTranscoder()

    @property
    def store(self) -> Transactional:
        return self.recorder  # type: ignore[return-value]

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """One database transaction for events and the views that decide commands."""
        with self.store.unit_of_work(one_flight=ONE_FLIGHT) as session:
            yield session

    def get(self, aggregate_id: str, version: int | None = None) -> Any | None:
        """The aggregate as the log now holds it, or None if it has no events.

        ``version``: its stored version, as a read in the current transaction
        found it (0 for none); a cached copy of that version is then used as
        it is. Otherwise a cached copy is brought up to date with the events
        after it, and without one every event is replayed.
        """
        if version == 0:
            return None
        cached = self.cache.load(aggregate_id)
        if cached is None:
            try:
                return self.repository.get(aggregate_id, projector_func=_project)
            except AggregateNotFoundError:
                return None
        cached_version, aggregate = cached
        if version is not None and version == cached_version:
            return aggregate
        newer = self.recorder.select_events(aggregate_id, gt=cached_version)
        to_domain_event = self.mapper.to_domain_event
        return _project(aggregate, (to_domain_event(stored) for stored in newer))

    def save(self, *objs: Any, **kwargs: Any) -> Any:
        """Record the aggregates' new events; once committed, keep the aggregates in the cache."""
        recordings = super().save(*objs, **kwargs)
        frozen = [(obj.id, AggregateCache.freeze(obj)) for obj in objs
                  if obj is not None and getattr(type(obj), "collect_events", None) is not None]
        if frozen:
            keep = functools.partial(self._keep, frozen)
            session = self.store.current_session()
            if session is None:
                keep()  # committed already: the save was its own unit of work
            else:
                session.on_commit(keep)
        return recordings

    def _keep(self, frozen: list[tuple[str, tuple[int, Any]]]) -> None:
        for aggregate_id, state in frozen:
            self.cache.put(aggregate_id, state)

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
                pause(0.002 * (attempt + 1))  # on the event loop, it serves others meanwhile
        raise AssertionError("unreachable")

    def decode_events(self, rows: Iterable[tuple[int, str, int, str, bytes]]) -> list[tuple[int, Any]]:
        """``(position, domain event)`` from stored ``(position, originator_id, originator_version, topic,
        state)`` rows, as the log's reader fetches them.

        What ``mapper.to_domain_event`` makes of each row, for replaying the
        log in bulk: what depends only on the topic (the class, how its ids
        convert) is worked out once per topic, not once per event. Events
        whose class has been upcast, or a mapper that encrypts or compresses,
        go through the mapper itself.
        """
        mapper = self.mapper
        if mapper.cipher is not None or mapper.compressor is not None:
            return [(row[0], mapper.to_domain_event(StoredEvent(*row[1:]))) for row in rows]
        decode = mapper.transcoder.decode
        # Ours, inlined: a call less for each of a million events.
        loads = orjson.loads if type(mapper.transcoder) is OrjsonTranscoder else None
        from_iso = datetime.fromisoformat
        kinds = _REPLAY_KINDS
        new, set_state = object.__new__, object.__setattr__
        events = []
        append = events.append
        for position, originator_id, originator_version, topic, state in rows:
            cls = kinds.get(topic)
            if cls is None:
                cls = kinds[topic] = _replay_class(topic)
            if cls is False or type(originator_id) is not str:
                append((position, mapper.to_domain_event(StoredEvent(originator_id, originator_version, topic, state))))
                continue
            if loads is not None:
                event_state = loads(state)
                stamp = event_state.get("timestamp")
                if type(stamp) is str:
                    event_state["timestamp"] = from_iso(stamp)
            else:
                event_state = decode(state)
            if "class_version" in event_state:
                del event_state["class_version"]
            event_state["originator_id"] = originator_id
            event_state["originator_version"] = originator_version
            event = new(cls)
            set_state(event, "__dict__", event_state)
            append((position, event))
        return events


def _project(aggregate: Any, events: Iterable[Any]) -> Any:
    """The library's ``project_aggregate`` without its per-event check against a
    runtime protocol, which costs more than the mutation itself: every event
    in this log is one of our aggregates' own."""
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


#: topic → its event class, or False when its events go through the mapper.
_REPLAY_KINDS: dict[str, type | bool] = {}


def _replay_class(topic: str) -> type | bool:
    """The event class of ``topic`` if its events decode as they are stored (ids as text, no upcasting)."""
    cls = resolve_topic(topic)
    return cls if decodes_as_stored(cls) else False
