"""Aggregates as this process last committed them, by version, so a command need not replay their events.

Why a cached aggregate never decides a command on stale state
=============================================================

An entry is an aggregate's state at one version, copied when it was saved
and put here only once that save's transaction committed (never one that
rolled back). Several server processes write to one log, so an entry may
be behind the log; it is never used without checking the version stored:

- a command that has read the aggregate's stored version in its decision
  read (``EventLog.get(id, version=...)``, e.g. the version beside a
  pending run that ``take_pending`` locked) uses the entry only if it is
  that version, and otherwise reads just the events after the entry's;
- a command that has not, reads the events after the entry's version (none,
  usually: one cheap statement, no replay) and applies them to a copy.

Either way the state decided on is the state of the log as read in the
command's own transaction, exactly as a full replay would have found it.
A concurrent writer committing after that read is caught, as it always was,
by the log's unique key on (aggregate, version): the save fails, the command
runs again (``EventLog.command``) and reads afresh. Each ``get`` returns a
private copy, so a command that mutates and then rolls back leaves the
entry as it was.

How an entry is copied
======================

An entry is a copy of the aggregate made when it was saved, and each load
hands out another: :func:`detached`. It copies every dict, list and set in
the aggregate's attributes, as ``pickle`` or ``copy.deepcopy`` would, keeping
two references to one container as two references to one copy; immutable
values (strings, numbers, times) are shared, as they can be, and so are a
dict's keys (hashable: tuples of such values, in Cairn's aggregates). Attributes a
class names in ``unchanged_in_place`` (a task's definition: replaced, never
edited) are shared as they are. Anything else goes through
``copy.deepcopy``. Measured on a claimed task (about 1 KB pickled), a
pickle's dumps and loads took 8 and 7 µs, ``copy.deepcopy`` 27 µs, and this
copy about 4 µs (2 µs for a task group).
"""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

#: Aggregates kept per process, the most recently used. A lifecycle keeps two
#: (its task, about 3.3 KiB as objects with a definition of 1 KiB as JSON, and
#: its group, under 1 KiB), so the cache is full after about 2,000 tasks, at
#: about 8 MiB, and the server's memory stays flat after that; what falls out
#: is replayed.
DEFAULT_MAXSIZE = 4096


#: Values a copy shares with the original: nothing can change them in place.
_IMMUTABLE = frozenset({str, int, float, bool, type(None), bytes, datetime, date, time, timedelta, Decimal, UUID})


def detached(aggregate: Any) -> Any:
    """A copy of ``aggregate`` that shares nothing that can change in place (see the module's docstring)."""
    kept = getattr(type(aggregate), "unchanged_in_place", ())
    memo: dict[int, Any] = {}
    state = {
        name: value if name in kept or type(value) in _IMMUTABLE else _copy(value, memo)
        for name, value in aggregate.__dict__.items()
    }
    twin = object.__new__(type(aggregate))
    object.__setattr__(twin, "__dict__", state)
    return twin


def _copy(value: Any, memo: dict[int, Any]) -> Any:
    kind = type(value)
    if kind in _IMMUTABLE:
        return value
    seen = memo.get(id(value))
    if seen is not None:
        return seen
    if kind is dict:
        twin: Any = {}
        memo[id(value)] = twin
        for key, item in value.items():
            twin[key] = item if type(item) in _IMMUTABLE else _copy(item, memo)
    elif kind is list:
        twin = []
        memo[id(value)] = twin
        twin.extend(item if type(item) in _IMMUTABLE else _copy(item, memo) for item in value)
    elif kind is tuple:
        twin = tuple(_copy(item, memo) for item in value)
        memo[id(value)] = twin
    elif (kind is set or kind is frozenset) and all(type(member) in _IMMUTABLE for member in value):
        twin = set(value) if kind is set else value
        memo[id(value)] = twin
    else:
        twin = copy.deepcopy(value, {})
        memo[id(value)] = twin
    return twin


class AggregateCache:
    def __init__(self, maxsize: int = DEFAULT_MAXSIZE):
        self.maxsize = maxsize
        self._entries: OrderedDict[str, tuple[int, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def version(self, aggregate_id: str) -> int | None:
        """The version cached for this aggregate, if any."""
        entry = self._entries.get(aggregate_id)
        return entry[0] if entry is not None else None

    def load(self, aggregate_id: str) -> tuple[int, Any] | None:
        """(version, a private copy of the aggregate at that version), or None."""
        with self._lock:
            entry = self._entries.get(aggregate_id)
            if entry is None:
                return None
            self._entries.move_to_end(aggregate_id)
        return entry[0], detached(entry[1])

    @staticmethod
    def freeze(aggregate: Any) -> tuple[int, Any]:
        """The aggregate's version and a copy of its state, as they are now (call it right after a save)."""
        return aggregate.version, detached(aggregate)

    def put(self, aggregate_id: str, frozen: tuple[int, Any]) -> None:
        """Keep a committed state, unless a later one is kept already."""
        with self._lock:
            entry = self._entries.get(aggregate_id)
            if entry is not None and entry[0] >= frozen[0]:
                return
            self._entries[aggregate_id] = frozen
            self._entries.move_to_end(aggregate_id)
            while len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
