"""Following the log from a position: the one engine behind every consumer.

A consumer is an object with a ``name``, a ``guarantee``, the ``topics`` it
reads (empty: every event) and ``handle(session, batch)``, where ``batch``
is a list of :class:`LoggedEvent`. :class:`LogFollower` runs it in a thread:
reads a batch after the consumer's position, hands it over, moves the
position, and waits for the next commit. Two guarantees:

- **exactly once**, for read-side views: ``handle`` writes its rows in
  ``session``, the transaction that also moves the position, so a crash
  keeps both or neither;
- **at least once**, for the world outside (AMQP, mail, GitHub):
  ``handle`` gets no session, makes its effects, and only when it returns
  is the position recorded; after a crash the unrecorded tail is handed
  over again, so effects carry stable ids for receivers to drop repeats.

The position is kept in ``consumer_positions`` (:class:`TrackedPosition`),
and on PostgreSQL one process at a time leads each consumer (an advisory
lock, ``leadership.py``); the others stand by and take over when its
connection goes. A consumer that serves only its own process (the event
stream) passes ``positions=`` its own keeper and ``leader=False``.

Reading: the followers of one process share a :class:`LogReader`
(``log_reader.py``), which reads each range of new events from the
database once, unfiltered, and decodes each event once; a follower takes
its topics from it in memory.

Waiting: commits in this process bump the :class:`LogSignal`; on PostgreSQL
a LISTEN on the log's NOTIFY bumps it for every process's commits, and every
wait has a timeout, so a lost notification costs a delay, never a stall.

A consumer never stops on one bad event (``dead_letters.py``): a batch that
fails is handled again one event at a time, each tried a bounded number of
times with growing pauses, and an event that still fails is recorded as a
dead letter and skipped. An event that cannot even be decoded is set aside
at once: decoding is a pure function, and trying again changes nothing. A failure of the outside world is not the event's:
``handle`` raises :class:`Unavailable` (database connection errors count as
such by themselves), and the follower retries from its position without end.

A new consumer (a hook scheduler, a notifier, a GitHub handler) declares
those four attributes, as every consumer always has, and is started by one
line in ``cairn/processes.py`` — ``follower(runtime, conninfo, consumer)``,
which is ``LogFollower(event_log, signal, consumer, conninfo=..., reader=...)`` as
before; the keywords added since (``positions``, ``leader``, ``gate``,
``retry``, ``reader``) are optional. One that acts on the outside world raises
:class:`Unavailable` when the outside world fails, and gives its effects ids
that stay the same when an event is handed over again.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import eventsourcing.persistence
import psycopg

from cairn.consumers.dead_letters import RetryPolicy, record, record_dead_letter
from cairn.consumers.leadership import Leadership
from cairn.consumers.log_reader import Entry, LogReader
from cairn.consumers.log_signal import LogSignal

log = logging.getLogger("cairn.follower")

Guarantee = Literal["exactly-once", "at-least-once"]
DEFAULT_RETRY = RetryPolicy()


class Unavailable(Exception):
    """The outside world failed, not the event (a broker down): retry later, never set the event aside."""


class Retake(Exception):
    """From a consumer's ``handle``: its topics changed with this batch; take the log again after ``after``, with them.

    Nothing of the batch is recorded as handled; ``after`` must not be before
    the position the batch was taken after.
    """

    def __init__(self, after: int):
        super().__init__(after)
        self.after = after


#: Failures of the database itself, retried like :class:`Unavailable`.
UNAVAILABLE: tuple[type[BaseException], ...] = (
    Unavailable,
    eventsourcing.persistence.OperationalError,
    eventsourcing.persistence.InterfaceError,
    psycopg.OperationalError,
    sqlite3.OperationalError,
    ConnectionError,
    TimeoutError,
)


@dataclass(frozen=True)
class LoggedEvent:
    position: int
    event: Any


class Consumer(Protocol):
    name: str
    guarantee: Guarantee
    topics: tuple[str, ...]

    def handle(self, session: Any, batch: list[LoggedEvent]) -> bool | None:
        """Process a batch; ``session`` is the transaction for exactly-once consumers.

        An at-least-once consumer may return False when it did nothing at
        all for the batch (no event asked anything of it): its position then
        moves in memory and is written down now and then, as over events
        not of its topics, rather than in a statement of its own each time.
        Redelivered after a crash, such a batch must again ask nothing.
        """


class Positions(Protocol):
    def read(self) -> int: ...

    def advance(self, session: Any, position: int) -> None:
        """Record ``position`` in ``session`` (None: in a transaction of its own)."""

    def skip_to(self, position: int) -> None:
        """Move over events of no interest, in memory; written down with a later advance."""

    def forget(self) -> None:
        """Read the position again next time (it may have been moved)."""


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


def read_range(event_log: Any, after: int, until: int, batch_size: int) -> Iterator[list[LoggedEvent]]:
    """The events after ``after`` up to ``until`` (inclusive), a batch at a time: for replays and history."""
    cursor = after
    while cursor < until:
        logged = [entry for entry in read_events(event_log, cursor, batch_size) if entry.position <= until]
        if not logged:
            return
        yield logged
        cursor = logged[-1].position


class TrackedPosition:
    """A consumer's position in ``consumer_positions``, kept in memory by the leader between steps."""

    def __init__(self, store: Any, name: str):
        self.store = store
        self.name = name
        self._known: int | None = None

    def read(self) -> int:
        if self._known is None:
            self._known = read_position(self.store, self.name)
        return self._known

    def advance(self, session: Any, position: int) -> None:
        if session is None:
            self.store.write_alone("set_consumer_position", {"name": self.name, "position": position})
            self._known = position
        else:
            session.run("set_consumer_position", {"name": self.name, "position": position})
            session.on_commit(lambda: self.skip_to(position))

    def skip_to(self, position: int) -> None:
        self._known = position

    def forget(self) -> None:
        self._known = None


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
        positions: Positions | None = None,
        leader: bool = True,
        gate: Callable[[float], bool] | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        reader: LogReader | None = None,
    ):
        self.log = event_log
        self.store = event_log.store
        self.signal = signal
        #: Shared by the followers of one process (``Runtime.log_reader``): one read and decoding of new events for all.
        self.reader = reader or LogReader(event_log, signal)
        self.consumer = consumer
        self.batch_size = batch_size
        self.idle_wait = idle_wait
        self.coalesce = coalesce
        self.positions: Positions = positions or TrackedPosition(self.store, consumer.name)
        #: ``gate(timeout)``: False while there is no reason to read (nobody listens), after waiting up to timeout.
        self.gate = gate
        self.retry = retry
        self.leadership = Leadership(conninfo if leader else None, consumer.name)
        self._recorded_at = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.caught_up = threading.Event()

    @property
    def name(self) -> str:
        return self.consumer.name

    def position(self) -> int:
        return read_position(self.store, self.name)

    def step(self, generation: int | None = None) -> int:
        """Process at most one batch; returns how many events were processed (or set aside).

        ``generation``: the signal's generation this step acts on, read
        before it; None reads whatever is committed by now.
        """
        after = self.positions.read()
        found = self.reader.take(after, self.batch_size, self.consumer.topics, generation)
        batch = self._decoded(found.entries)
        if batch is None:
            return 1
        if not batch:
            self._move_over(after, found.through)
            return 0
        try:
            self._deliver(batch)
        except Retake as again:
            return self._retake(again.after)
        except UNAVAILABLE:
            raise
        except Exception:
            log.warning("consumer %s failed on a batch of %d; taking it one event at a time", self.name, len(batch))
            return self._one_at_a_time(batch)
        return len(batch)

    def _retake(self, after: int) -> int:
        self.positions.skip_to(after)
        return self.batch_size  # taken again at once, not after a wait for the next commit

    def _decoded(self, entries: list[Entry]) -> list[LoggedEvent] | None:
        """The batch, cut short before an event that cannot be decoded; None if the first could not be."""
        batch = []
        for entry in entries:
            event = self.reader.decode(entry)
            if isinstance(event, Exception):
                if batch:
                    break  # what came before it goes first; it is first next time
                n = entry.notification
                log.error("consumer %s cannot decode event %d; set aside", self.name, n.id, exc_info=event)
                with self.store.unit_of_work() as session:
                    record(session, self.name, n.id, n.originator_id, n.originator_version, n.topic, event, 1)
                    self.positions.advance(session, n.id)
                return None
            batch.append(LoggedEvent(entry.position, event))
        return batch

    def _deliver(self, batch: list[LoggedEvent]) -> None:
        if self.consumer.guarantee == "exactly-once":
            with self.store.unit_of_work() as session:
                self.consumer.handle(session, batch)
                session.placed_in_log()
                self.positions.advance(session, batch[-1].position)
        else:
            after = self.positions.read()
            if self.consumer.handle(None, batch) is False:
                self._move_over(after, batch[-1].position)
                return
            self.positions.advance(None, batch[-1].position)
            self._recorded_at = time.monotonic()

    def _one_at_a_time(self, batch: list[LoggedEvent]) -> int:
        """Deliver ``batch`` event by event up to the first that keeps failing, which is set aside."""
        for done, logged in enumerate(batch, 1):
            pauses = self.retry.pauses()
            attempt = 0
            while True:
                attempt += 1
                try:
                    self._deliver([logged])
                    break
                except Retake as again:
                    return self._retake(again.after)
                except UNAVAILABLE:
                    raise
                except Exception as error:
                    if not pauses:
                        self._set_aside(logged, error, attempt)
                        return done
                    log.warning("consumer %s failed on event %d (attempt %d); retrying", self.name, logged.position, attempt)
                    if self._stop.wait(pauses.pop(0)):
                        return done - 1
        return len(batch)

    def _set_aside(self, logged: LoggedEvent, error: BaseException, attempts: int) -> None:
        log.error(
            "consumer %s sets event %d aside after %d attempts; going on with the next",
            self.name, logged.position, attempts, exc_info=error,
        )
        with self.store.unit_of_work() as session:
            record_dead_letter(session, self.name, logged.position, logged.event, error, attempts)
            self.positions.advance(session, logged.position)

    def _move_over(self, after: int, last: int) -> None:
        # Events exist past us, but none of our topics (or none that asked
        # anything of the consumer): move over them, writing the position
        # down now and then rather than every time.
        if last <= after:
            return
        if last - after >= self.batch_size or time.monotonic() - self._recorded_at > 5:
            self.positions.advance(None, last)
            self._recorded_at = time.monotonic()
        else:
            self.positions.skip_to(last)

    def catch_up(self) -> int:
        total = 0
        while (n := self.step()) > 0:
            total += n
        return total

    # running in a thread

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"cairn-follow-{self.name}")
        self._thread.start()

    def request_stop(self) -> None:
        self._stop.set()
        self.signal.bump()

    def stop(self, timeout: float = 10.0) -> None:
        self.request_stop()
        if self._thread is not None:
            self._thread.join(timeout)
        self.leadership.release()
        close = getattr(self.consumer, "close", None)
        if close is not None and not (self._thread is not None and self._thread.is_alive()):
            close()

    def _run(self) -> None:
        # Woken by a commit's signal, a step acts on that generation and may
        # take what another follower read since; after a wait that timed out
        # (a notification may have been lost) it reads what is committed.
        signalled = False
        while not self._stop.is_set():
            if not self.leadership.held():
                self.positions.forget()
                signalled = False
                self._stop.wait(2.0)
                continue
            if self.gate is not None and not self.gate(self.idle_wait):
                signalled = False
                continue
            seen = self.signal.generation
            try:
                processed = self.step(seen if signalled else None)
            except Exception:
                log.warning("consumer %s cannot go on for now; retrying from its position", self.name, exc_info=True)
                self.positions.forget()
                signalled = False
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
                    self.positions.forget()
                    signalled = False
                else:
                    signalled = True
                    if self.coalesce:
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
