"""Following the log from a tracked position: the one mechanism behind every consumer.

A consumer has a name, and its position — the notification id of the last
event it finished — is kept in ``consumer_positions``. Two guarantees:

- **exactly once**, for views: the consumer's rows and its new position are
  written in one transaction, so a crash either keeps both or neither;
- **at least once**, for the world outside (AMQP, mail): the consumer
  delivers a batch and confirms it, and only then is the position recorded;
  after a crash the unconfirmed tail is delivered again, with the same
  stable message ids, so receivers can drop duplicates.

On PostgreSQL several Cairn processes may run the same consumer: each
follower first takes a session-level advisory lock named after the consumer,
and only the holder follows; the others stand by and take over when its
connection goes away. On SQLite there is one process and nothing to elect.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from cairn.consumers.leadership import Leadership
from cairn.consumers.log_signal import LogSignal

log = logging.getLogger("cairn.follower")

Guarantee = Literal["exactly-once", "at-least-once"]


@dataclass(frozen=True)
class LoggedEvent:
    position: int
    event: Any


class Consumer(Protocol):
    name: str
    guarantee: Guarantee
    topics: tuple[str, ...]

    def handle(self, session: Any, batch: list[LoggedEvent]) -> None:
        """Process a batch; ``session`` is the transaction for exactly-once consumers."""


def read_position(store: Any, name: str) -> int:
    with store.reading() as session:
        row = session.one("get_consumer_position", {"name": name})
    return int(row["position"]) if row else 0


def read_events(event_log: Any, after: int, limit: int, topics: tuple[str, ...] = ()) -> list[LoggedEvent]:
    notifications = event_log.recorder.select_notifications(
        start=after, limit=limit, topics=list(topics), inclusive_of_start=False
    )
    to_event = event_log.mapper.to_domain_event
    return [LoggedEvent(n.id, to_event(n)) for n in notifications]


class LogFollower:
    def __init__(
        self,
        event_log: Any,
        signal: LogSignal,
        consumer: Consumer,
        *,
        conninfo: str | None = None,
        batch_size: int = 1000,
        idle_wait: float = 1.0,
        coalesce: float = 0.02,
    ):
        self.log = event_log
        self.store = event_log.store
        self.signal = signal
        self.consumer = consumer
        self.conninfo = conninfo
        self.batch_size = batch_size
        self.idle_wait = idle_wait
        self.coalesce = coalesce
        # The leader alone moves the position, so it keeps it in memory
        # between steps (read again whenever leadership is taken).
        self._position: int | None = None
        self._recorded_at = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.leadership = Leadership(conninfo, consumer.name)
        self.caught_up = threading.Event()

    @property
    def name(self) -> str:
        return self.consumer.name

    def position(self) -> int:
        return read_position(self.store, self.name)

    def step(self) -> int:
        """Process at most one batch; returns how many events were processed."""
        after = self._position if self._position is not None else self.position()
        # The head is read before the batch: an event committed in between is
        # then past the head, and is read next time rather than skipped.
        last = self._last_position(after)
        batch = read_events(self.log, after, self.batch_size, self.consumer.topics)
        if not batch:
            # Events exist past us, but none of our topics: move over them,
            # writing the position down now and then rather than every time.
            if last > after and (last - after >= self.batch_size or time.monotonic() - self._recorded_at > 5):
                self._record(last)
            elif last > after:
                self._position = last
            return 0
        if self.consumer.guarantee == "exactly-once":
            with self.store.unit_of_work() as session:
                self.consumer.handle(session, batch)
                session.placed_in_log()
                session.run("set_consumer_position", {"name": self.name, "position": batch[-1].position})
            self._position = batch[-1].position
        else:
            self.consumer.handle(None, batch)
            self._record(batch[-1].position)
        return len(batch)

    def _last_position(self, after: int) -> int:
        if not self.consumer.topics:
            return after
        return self.log.recorder.max_notification_id() or 0

    def _record(self, position: int) -> None:
        with self.store.unit_of_work() as session:
            session.run("set_consumer_position", {"name": self.name, "position": position})
        self._position = position
        self._recorded_at = time.monotonic()

    def catch_up(self) -> int:
        total = 0
        while (n := self.step()) > 0:
            total += n
        return total

    # running in a thread

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"cairn-follow-{self.name}")
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self.signal.bump()
        if self._thread is not None:
            self._thread.join(timeout)
        self.leadership.release()

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self.leadership.held():
                self._position = None
                self._stop.wait(2.0)
                continue
            seen = self.signal.generation
            try:
                processed = self.step()
            except Exception:
                log.exception("consumer %s failed; retrying", self.name)
                self._position = None
                self._stop.wait(1.0)
                continue
            # A short batch reached the head as it was read: wait for the next
            # commit rather than spend a read on finding nothing.
            if processed < self.batch_size:
                self.caught_up.set()
                self.signal.wait(seen, self.idle_wait)
                if self.signal.generation == seen:
                    # A quiet log: read the position again, in case an
                    # operator moved it (to replay a range, say).
                    self._position = None
                else:
                    # Let a burst of commits land, and take them as one batch.
                    self._stop.wait(self.coalesce)


class AggregateFolder:
    """The state of an aggregate right after a given event, by folding events in order.

    Consumers that need state (a Pulse message carries the task's status at
    that moment) fold each event onto a cached copy; on a miss, the
    aggregate is loaded at the version just before the event.
    """

    def __init__(self, event_log: Any, capacity: int = 10_000):
        self.log = event_log
        self.capacity = capacity
        self._cache: OrderedDict[str, Any] = OrderedDict()

    def state_after(self, event: Any) -> Any:
        key = event.originator_id
        aggregate = self._cache.pop(key, None)
        if aggregate is None or aggregate.version != event.originator_version - 1:
            if event.originator_version > 1:
                aggregate = self.log.repository.get(key, version=event.originator_version - 1)
            else:
                aggregate = None
        aggregate = event.mutate(aggregate)
        self._cache[key] = aggregate
        if len(self._cache) > self.capacity:
            self._cache.popitem(last=False)
        return aggregate
