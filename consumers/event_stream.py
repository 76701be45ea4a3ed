"""The event stream: Pulse messages fanned out to this process's subscribers.

A consumer on the log-follower engine that follows from the head, in every
process, with no leader and no tracked position: it takes each event's
messages from :class:`DerivedMessages` (derived once per process, shared
with the Pulse publisher), keeps the most recent in a ring buffer, and
hands each to the subscribers whose filter matches — an in-memory check, so
idle subscribers cost no database work at all. With no subscriber at all
it reads nothing.

A subscriber that resumes from an older position first reads history from
the log (deriving messages the same way, on its own fold), then switches to
the live feed. It registers for live messages *before* reading history and
drops live items at or before the last one it sent, so the hand-over has
neither a gap nor a duplicate. A subscriber whose filter fails is cut off;
the others go on.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

from starlette.concurrency import run_in_threadpool

from cairn.consumers.log_follower import AggregateFolder, Guarantee, LogFollower, LoggedEvent, read_range
from cairn.consumers.log_reader import LogReader
from cairn.consumers.log_signal import LogSignal
from cairn.consumers.pulse_derivation import (  # noqa: F401  (derive: the stream's function, for its readers)
    DerivedMessages,
    StreamItem,
    derive,
    derive_skipping,
)
from cairn.domain.pulse_routing import Position, StreamFilter

log = logging.getLogger("cairn.event_stream")

NAME = "event-stream"
HISTORY_BATCH = 500
SUBSCRIBER_BACKLOG = 10_000


class _Subscriber:
    def __init__(self, loop: asyncio.AbstractEventLoop, stream_filter: StreamFilter):
        self.loop = loop
        self.filter = stream_filter
        self.queue: asyncio.Queue[StreamItem | None] = asyncio.Queue(SUBSCRIBER_BACKLOG)
        self.overflowed = False

    def offer(self, item: StreamItem) -> None:
        try:
            wanted = self.filter.matches(item.message)
        except Exception:
            log.warning("a subscriber's filter failed; it is cut off", exc_info=True)
            wanted, self.overflowed = False, True
            self.loop.call_soon_threadsafe(self._put, None)
        if wanted:
            self.loop.call_soon_threadsafe(self._put, item)

    def _put(self, item: StreamItem | None) -> None:
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            # A subscriber this far behind is cut off; it resumes from its last id.
            self.overflowed = True


class EventStream:
    """The consumer (``handle``), its position (``read``, ``advance``) and its subscribers, in one."""

    name = NAME
    guarantee: Guarantee = "at-least-once"
    topics: tuple[str, ...] = ()

    def __init__(
        self, event_log: Any, signal: LogSignal, derived: DerivedMessages | None = None, buffer_size: int = 10_000,
        reader: LogReader | None = None,
    ):
        self.log = event_log
        self.signal = signal
        self.derived = derived or DerivedMessages(event_log)
        self.buffer: deque[StreamItem] = deque(maxlen=buffer_size)
        self.head = 0
        self._subscribers: set[_Subscriber] = set()
        self._lock = threading.Lock()
        # True while nobody listens and the head is not followed; meanwhile
        # the follower waits for a subscriber, not for every commit.
        self._stale = False
        self._subscribed = threading.Event()
        self.follower = LogFollower(
            event_log, signal, self, batch_size=HISTORY_BATCH, coalesce=0, positions=self, leader=False,
            gate=self._listened_to, reader=reader,
        )

    def start(self) -> None:
        self.head = self._newest()
        self.follower.start()

    def stop(self) -> None:
        self.follower.request_stop()
        self._subscribed.set()
        self.follower.stop(5)

    @property
    def subscribers(self) -> int:
        """How many clients this process streams to now (for metrics, and tests that wait for one)."""
        return len(self._subscribers)

    # the consumer and its position, as the follower sees them

    def handle(self, session: Any, batch: list[LoggedEvent]) -> None:
        items = self.derived.of(batch)
        with self._lock:
            for item in items:
                self.buffer.append(item)
                for subscriber in self._subscribers:
                    subscriber.offer(item)
            self.head = max(self.head, batch[-1].position)

    def read(self) -> int:
        return self.head

    def advance(self, session: Any, position: int) -> None:
        with self._lock:
            self.head = max(self.head, position)

    def skip_to(self, position: int) -> None:
        self.advance(None, position)

    def forget(self) -> None:
        pass

    def _listened_to(self, timeout: float) -> bool:
        with self._lock:
            if self._subscribers and not self._stale:
                return True
            # Nobody listens: read nothing; the next subscriber finds the head.
            self._stale = True
        self._subscribed.wait(timeout)
        self._subscribed.clear()
        return False

    async def subscribe(self, stream_filter: StreamFilter, after: Position | None) -> AsyncIterator[StreamItem]:
        """Messages matching ``stream_filter`` after ``after`` (None: from now on)."""
        subscriber = _Subscriber(asyncio.get_running_loop(), stream_filter)
        while True:
            newest = await run_in_threadpool(self._newest) if self._stale else None
            with self._lock:
                if self._stale:
                    if newest is None:
                        continue  # it went stale meanwhile: read the head first
                    # Events were skipped while nobody listened: the buffer no
                    # longer runs unbroken to the head, so it starts afresh there.
                    self.head = max(self.head, newest)
                    self.buffer.clear()
                    self._stale = False
                self._subscribers.add(subscriber)
                self._subscribed.set()
                head = self.head
                buffered = [i for i in self.buffer if after is not None and i.position > after]
                oldest = self.buffer[0].position.notification if self.buffer else head + 1
                break
        try:
            last = after if after is not None else Position.after_event(head)
            if after is not None:
                if after.notification < oldest - 1:
                    async for item in self._history(stream_filter, after, min(oldest - 1, head)):
                        last = item.position
                        yield item
                for item in buffered:
                    if item.position > last and stream_filter.matches(item.message):
                        last = item.position
                        yield item
            while not subscriber.overflowed:
                item = await subscriber.queue.get()
                if item is None:
                    return
                if item.position > last:
                    last = item.position
                    yield item
        finally:
            with self._lock:
                self._subscribers.discard(subscriber)

    async def now(self) -> Position:
        """The position of the present: subscribing after it misses nothing that happens from now on."""
        return Position.after_event(await run_in_threadpool(self._newest))

    def _newest(self) -> int:
        return self.log.recorder.max_notification_id() or 0

    async def _history(self, stream_filter: StreamFilter, after: Position, until: int) -> AsyncIterator[StreamItem]:
        folder = AggregateFolder(self.log, capacity=2_000)
        cursor = after.notification - 1 if after.index < (1 << 30) else after.notification
        batches = read_range(self.log, cursor, until, HISTORY_BATCH)
        while (logged := await run_in_threadpool(next, batches, None)) is not None:
            for item in await run_in_threadpool(derive_skipping, folder, logged):
                if item.position > after and stream_filter.matches(item.message):
                    yield item
