"""The event stream: Pulse messages derived once per process, fanned out to subscribers.

One thread follows the log from the head, folds each event onto its
aggregate, derives its messages, keeps the most recent ones in a ring
buffer, and hands each to the subscribers whose filter matches — an
in-memory check, so idle subscribers cost no database work at all.
With no subscriber at all it reads nothing.

A subscriber that resumes from an older position first reads history from
the log (deriving messages the same way, on its own fold), then switches to
the live feed. It registers for live messages *before* reading history and
drops live items at or before the last one it sent, so the hand-over has
neither a gap nor a duplicate. Every item carries its position
``<notification id>.<index>``; the index orders the messages of one event.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from collections import deque
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool

from cairn.consumers.log_follower import AggregateFolder, read_events
from cairn.consumers.log_signal import LogSignal
from cairn.domain.pulse_messages import PulseMessage, messages_for

log = logging.getLogger("cairn.event_stream")

HISTORY_BATCH = 500
SUBSCRIBER_BACKLOG = 10_000


@dataclass(frozen=True, order=True)
class Position:
    notification: int
    index: int

    def __str__(self) -> str:
        return f"{self.notification}.{self.index}"

    @classmethod
    def parse(cls, text: str) -> Position:
        head, _, index = text.strip().partition(".")
        if not head.isdigit() or (index and not index.isdigit()):
            raise ValueError(f"not a stream position: {text!r}")
        # A bare notification id means "everything after that event".
        return cls(int(head), int(index) if index else 1 << 30)


@dataclass(frozen=True)
class StreamItem:
    position: Position
    message: PulseMessage


class RoutingKeyPattern:
    """AMQP topic matching: ``*`` is exactly one word, ``#`` zero or more words."""

    def __init__(self, pattern: str):
        self.pattern = pattern
        self.words = tuple(pattern.split("."))

    def match(self, key: str) -> bool:
        words = key.split(".")
        pattern = self.words

        @functools.cache
        def at(p: int, k: int) -> bool:
            if p == len(pattern):
                return k == len(words)
            if pattern[p] == "#":
                return at(p + 1, k) or (k < len(words) and at(p, k + 1))
            if k == len(words):
                return False
            return (pattern[p] == "*" or pattern[p] == words[k]) and at(p + 1, k + 1)

        return at(0, 0)


@dataclass(frozen=True)
class StreamFilter:
    exchanges: frozenset[str]
    routing_key: RoutingKeyPattern

    def matches(self, message: PulseMessage) -> bool:
        if self.exchanges and message.exchange not in self.exchanges:
            return False
        return any(self.routing_key.match(key) for key in (message.routing_key, *message.cc))


def derive(folder: AggregateFolder, logged: Iterable[Any]) -> list[StreamItem]:
    items = []
    for entry in logged:
        aggregate = folder.state_after(entry.event)
        for index, message in enumerate(messages_for(entry.event, aggregate)):
            items.append(StreamItem(Position(entry.position, index), message))
    return items


class _Subscriber:
    def __init__(self, loop: asyncio.AbstractEventLoop, stream_filter: StreamFilter):
        self.loop = loop
        self.filter = stream_filter
        self.queue: asyncio.Queue[StreamItem | None] = asyncio.Queue(SUBSCRIBER_BACKLOG)
        self.overflowed = False

    def offer(self, item: StreamItem) -> None:
        if self.filter.matches(item.message):
            self.loop.call_soon_threadsafe(self._put, item)

    def _put(self, item: StreamItem) -> None:
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            # A subscriber this far behind is cut off; it resumes from its last id.
            self.overflowed = True


class EventStream:
    def __init__(self, event_log: Any, signal: LogSignal, buffer_size: int = 10_000):
        self.log = event_log
        self.signal = signal
        self.buffer: deque[StreamItem] = deque(maxlen=buffer_size)
        self.head = 0
        self._subscribers: set[_Subscriber] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._folder = AggregateFolder(event_log)
        # True while nobody listens and the head is not followed; meanwhile
        # the follower waits for a subscriber, not for every commit.
        self._stale = False
        self._subscribed = threading.Event()

    def start(self) -> None:
        self.head = self._newest()
        self._thread = threading.Thread(target=self._follow, daemon=True, name="cairn-event-stream")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._subscribed.set()
        self.signal.bump()
        if self._thread is not None:
            self._thread.join(5)

    def _follow(self) -> None:
        while not self._stop.is_set():
            seen = self.signal.generation
            try:
                with self._lock:
                    if not self._subscribers:
                        # Nobody listens: read nothing; the next subscriber finds the head.
                        self._stale = True
                if self._stale:
                    self._subscribed.wait(1.0)
                    self._subscribed.clear()
                    continue
                logged = read_events(self.log, self.head, HISTORY_BATCH)
                items = derive(self._folder, logged)
            except Exception:
                log.exception("event stream could not read the log; retrying")
                self._stop.wait(1.0)
                continue
            with self._lock:
                for item in items:
                    self.buffer.append(item)
                    for subscriber in self._subscribers:
                        subscriber.offer(item)
                if logged:
                    self.head = logged[-1].position
            if not logged:
                self.signal.wait(seen, 1.0)

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
            last = after if after is not None else Position(head, 1 << 30)
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

    def _newest(self) -> int:
        return self.log.recorder.max_notification_id() or 0

    async def _history(self, stream_filter: StreamFilter, after: Position, until: int) -> AsyncIterator[StreamItem]:
        folder = AggregateFolder(self.log, capacity=2_000)
        cursor = after.notification - 1 if after.index < (1 << 30) else after.notification
        while cursor < until:
            logged = await run_in_threadpool(read_events, self.log, cursor, HISTORY_BATCH)
            logged = [entry for entry in logged if entry.position <= until]
            if not logged:
                return
            for item in await run_in_threadpool(derive, folder, logged):
                if item.position > after and stream_filter.matches(item.message):
                    yield item
            cursor = logged[-1].position
