"""Pulse messages of logged events, derived once per process for every reader.

A Pulse message is a pure function of an event and its aggregate's state
right after it (``domain/pulse_messages.py``), so the messages of a log
position are the same whoever asks. The event stream (for this process's
SSE subscribers) and the Pulse publisher (for RabbitMQ) both follow the
log near its head: :class:`DerivedMessages` folds and derives each position
once, keeps the results of the most recent positions, and hands the same
items to both. A reader far behind (a publisher catching up after an
outage) derives what is no longer kept, on the same fold.

Every item carries its position ``<notification id>.<index>``; the index
orders the messages of one event.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cairn.consumers.log_follower import AggregateFolder, LoggedEvent
from cairn.domain.pulse_messages import PulseMessage, messages_for
from cairn.domain.pulse_routing import Position

log = logging.getLogger("cairn.pulse")

#: How many recent log positions keep their derived messages.
REMEMBERED = 20_000


@dataclass(frozen=True)
class StreamItem:
    position: Position
    message: PulseMessage


def derive(folder: AggregateFolder, logged: Iterable[Any]) -> list[StreamItem]:
    items = []
    for entry in logged:
        aggregate = folder.state_after(entry.event)
        for index, message in enumerate(messages_for(entry.event, aggregate)):
            items.append(StreamItem(Position(entry.position, index), message))
    return items


def derive_skipping(folder: AggregateFolder, logged: list[Any]) -> list[StreamItem]:
    """As :func:`derive`, leaving out (and logging) an event whose messages cannot be derived."""
    try:
        return derive(folder, logged)
    except Exception:
        items = []
        for entry in logged:
            try:
                items.extend(derive(folder, [entry]))
            except Exception:
                log.warning("no messages for event %d: it cannot be derived", entry.position, exc_info=True)
        return items


class DerivedMessages:
    """The Pulse messages of log positions, each derived once in this process."""

    def __init__(self, event_log: Any, remembered: int = REMEMBERED):
        self.folder = AggregateFolder(event_log)
        self.remembered = remembered
        self._items: OrderedDict[int, list[StreamItem]] = OrderedDict()
        self._lock = threading.Lock()
        #: How many events were derived here, and how many served from what was kept.
        self.derived = 0
        self.reused = 0

    def of(self, batch: list[LoggedEvent]) -> list[StreamItem]:
        """The items of ``batch``, in log order; raises if one of its events cannot be derived."""
        items: list[StreamItem] = []
        with self._lock:
            for logged in batch:
                kept = self._items.get(logged.position)
                if kept is None:
                    kept = derive(self.folder, [logged])
                    self._items[logged.position] = kept
                    if len(self._items) > self.remembered:
                        self._items.popitem(last=False)
                    self.derived += 1
                else:
                    self.reused += 1
                items.extend(kept)
        return items
