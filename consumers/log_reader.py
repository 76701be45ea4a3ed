"""One read and one decoding of the log's newest events for every follower of a process.

The followers of one process (the hook listener, the indexer, the notifier,
the analytics view) wake on the same commits and want the same new events:
:class:`LogReader` reads them from the database once, unfiltered, keeps the
most recent ``capacity`` of them as a window, and each follower takes its
topics from the window in memory. An event is decoded the first time a
follower takes it, and the decoded event (or the error decoding raised) is
kept for the others; decoded events are shared, which consumers allow:
none of them changes an event it is given.

What the window may claim is the subtle part. Notification ids have gaps
(a rolled-back transaction consumes its ids), so ids alone never say that a
range is complete; but a read of "the events after A" that returned events
up to B says exactly what (A, B] holds, for good: the log commits in id
order under a lock, so nothing can later commit at or below B. The window
is such a range, (low, high], grown by reads after its high. What lies
*past* high is a claim of a moment: a read that came back short saw
nothing more as it began, and that holds only for commits signalled before
it. So the claim keeps the signal's generation observed before that read
began, and a follower acting on generation g (it read g, then the log)
trusts it only if that generation is at least g; a follower with no
generation to act on (``catch_up``, or after a wait that timed out, when a
notification may have been lost) trusts only a read that began after it
asked. Otherwise it reads past high itself, holding the fill lock so that
followers wanting the same read wait for it rather than repeat it.

A follower behind the window (just started, or slower than the others by
more than the window holds) reads on its own; a read that reaches the
window joins it. A follower ahead of it (one whose position another process
moved) starts the window afresh where it stands.
"""

from __future__ import annotations

import bisect
import itertools
import threading
from dataclasses import dataclass
from typing import Any

from cairn.consumers.log_signal import LogSignal

#: How many of the newest events the window keeps.
CAPACITY = 5_000
#: How many events one read of the database asks for.
READ_SIZE = 1_000


class Entry:
    """A logged notification, and once a follower asked for it, its decoded event or the error decoding raised."""

    __slots__ = ("notification", "position", "topic", "decoded")

    def __init__(self, notification: Any):
        self.notification = notification
        self.position: int = notification.id
        self.topic: str = notification.topic
        self.decoded: Any = None


@dataclass(frozen=True)
class Tail:
    """A read that found nothing past the window's high: the generation seen, and the ticket taken, before it began."""

    generation: int
    ticket: int


@dataclass(frozen=True)
class Window:
    """The entries in (low, high]: ``entries[start:stop]``, their positions ``positions[start:stop]``.

    A newer window may share the two lists, appended to past ``stop``:
    what this one holds does not change, so a follower may go on reading
    it while the next read extends the lists (``LogReader._extend``).
    """

    low: int
    high: int
    positions: list[int]
    entries: list[Entry]
    #: None: the read that set ``high`` was full, and more is known to follow.
    tail: Tail | None
    start: int
    stop: int

    @classmethod
    def of(cls, low: int, high: int, entries: list[Entry], tail: Tail | None) -> Window:
        return cls(low, high, [e.position for e in entries], entries, tail, 0, len(entries))

    def held(self) -> list[Entry]:
        return self.entries[self.start:self.stop]

    def after(self, position: int) -> list[Entry]:
        return self.entries[bisect.bisect_right(self.positions, position, self.start, self.stop):self.stop]


@dataclass(frozen=True)
class Found:
    """What a follower takes: ``entries`` of its topics after its position; nothing else of its topics up to ``through``."""

    entries: list[Entry]
    through: int
    #: True when the entries stop short of the log's head (a full batch, or an event that cannot be decoded).
    more: bool


class LogReader:
    def __init__(self, event_log: Any, signal: LogSignal, capacity: int = CAPACITY, read_size: int = READ_SIZE):
        self.log = event_log
        self.signal = signal
        self.capacity = capacity
        self.read_size = read_size
        self._window: Window | None = None
        self._tickets = itertools.count(1)
        self._lock = threading.Lock()  # around changing the window; never held while reading
        self._fill = threading.Lock()  # around the read past the window's high
        #: How many reads went to the database.
        self.reads = 0

    def take(self, after: int, limit: int, topics: tuple[str, ...], generation: int | None = None) -> Found:
        """Up to ``limit`` events of ``topics`` (empty: all) after ``after``, stopping after one that cannot be decoded.

        ``generation``: the signal's generation the caller read before
        asking; every commit signalled up to it is seen. None: every commit
        before this call is seen.
        """
        asked = next(self._tickets)
        wanted = frozenset(topics)
        taken: list[Entry] = []
        cursor = after
        while True:
            entries, through, head = self._span(cursor, generation, asked)
            for entry in entries:
                if wanted and entry.topic not in wanted:
                    continue
                taken.append(entry)
                if isinstance(self.decode(entry), Exception) or len(taken) == limit:
                    return Found(taken, entry.position, more=True)
            cursor = through
            if head:
                return Found(taken, cursor, more=False)

    def decode(self, entry: Entry) -> Any:
        """The entry's event, decoded once for every follower; the exception, if it cannot be."""
        decoded = entry.decoded
        if decoded is None:
            try:
                decoded = self.log.mapper.to_domain_event(entry.notification)
            except Exception as error:  # noqa: BLE001 - each follower sets it aside
                decoded = error
            entry.decoded = decoded
        return decoded

    def _span(self, cursor: int, generation: int | None, asked: int) -> tuple[list[Entry], int, bool]:
        """Entries after ``cursor`` up to a ``through`` position, and whether nothing follows it for this caller."""
        while True:
            window = self._window
            if window is not None:
                if cursor < window.low:
                    return self._behind(cursor)
                if cursor < window.high:
                    return window.after(cursor), window.high, False
                if cursor == window.high and self._trusted(window.tail, generation, asked):
                    return [], window.high, True
            with self._fill:
                if self._window is not window:
                    continue  # another follower read meanwhile: look again
                if window is None or cursor > window.high:
                    return self._start(cursor)
                return self._extend(window)

    @staticmethod
    def _trusted(tail: Tail | None, generation: int | None, asked: int) -> bool:
        if tail is None:
            return False
        if generation is not None and tail.generation >= generation:
            return True
        return tail.ticket > asked

    def _read(self, after: int) -> tuple[list[Entry], int, Tail | None]:
        tail = Tail(self.signal.generation, next(self._tickets))
        notifications = self.log.recorder.select_notifications(
            start=after, limit=self.read_size, inclusive_of_start=False
        )
        with self._lock:
            self.reads += 1
        entries = [Entry(n) for n in notifications]
        if len(entries) == self.read_size:
            return entries, entries[-1].position, None
        return entries, entries[-1].position if entries else after, tail

    def _extend(self, window: Window) -> tuple[list[Entry], int, bool]:
        entries, high, tail = self._read(window.high)
        with self._lock:
            # Only the fill lock's holder moves the high; a read behind may have moved the low meanwhile.
            window = self._window or window
            # Only the newest window is extended, and it always holds the ends of
            # its lists (``Window.of`` and the letting-go below make new lists), so
            # they are appended to, not copied: a read costs what it read, not the
            # window's length.
            positions, kept, start, stop = window.positions, window.entries, window.start, window.stop
            positions.extend([e.position for e in entries])
            kept.extend(entries)
            stop += len(entries)
            low = window.low
            if stop - start > self.capacity:
                start = stop - self.capacity
                low = positions[start - 1]
            if start > self.capacity // 4:
                # What fell out of the window is let go, a quarter of it at a time.
                positions, kept, stop, start = positions[start:stop], kept[start:stop], stop - start, 0
            self._window = Window(low, high, positions, kept, tail, start, stop)
        return entries, high, tail is not None and not entries

    def _start(self, cursor: int) -> tuple[list[Entry], int, bool]:
        entries, high, tail = self._read(cursor)
        with self._lock:
            self._window = Window.of(cursor, high, entries, tail)
        return entries, high, tail is not None and not entries

    def _behind(self, cursor: int) -> tuple[list[Entry], int, bool]:
        entries, high, tail = self._read(cursor)
        with self._lock:
            window = self._window
            # A read that reaches the window joins it, while the window has room.
            if window is not None and window.low <= high <= window.high:
                joined = [e for e in entries if e.position <= window.low]
                if len(joined) + window.stop - window.start <= self.capacity:
                    self._window = Window.of(cursor, window.high, joined + window.held(), window.tail)
        return entries, high, tail is not None and not entries
