"""Aggregates as this process last committed them, by version, so a command need not replay their events.

Why a cached aggregate never decides a command on stale state
=============================================================

An entry is an aggregate's state at one version, pickled when it was saved
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
private copy (unpickled), so a command that mutates and then rolls back
leaves the entry as it was.
"""

from __future__ import annotations

import pickle
import threading
from collections import OrderedDict
from typing import Any

#: Aggregates kept per process, the most recently used: about 1.2 KiB each
#: for a task (about 5 MiB in all). A lifecycle keeps two (its task and its
#: group), so the cache is full after a couple of thousand tasks and the
#: server's memory stays flat after that; what falls out is replayed.
DEFAULT_MAXSIZE = 4096


class AggregateCache:
    def __init__(self, maxsize: int = DEFAULT_MAXSIZE):
        self.maxsize = maxsize
        self._entries: OrderedDict[str, tuple[int, bytes]] = OrderedDict()
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
        return entry[0], pickle.loads(entry[1])

    @staticmethod
    def freeze(aggregate: Any) -> tuple[int, bytes]:
        """The aggregate's version and state, as they are now (call it right after a save)."""
        return aggregate.version, pickle.dumps(aggregate, protocol=pickle.HIGHEST_PROTOCOL)

    def put(self, aggregate_id: str, frozen: tuple[int, bytes]) -> None:
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
