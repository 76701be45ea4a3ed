"""Recorded history as the API shows it: every event of an entity, oldest first.

Cairn's own addition to Taskcluster's services (``clientHistory``,
``roleHistory``, ``taskHistory``, ``taskGroupHistory``): each event with its
log position, version, type, the client that caused it and when.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cairn.api.errors import ResourceNotFound
from cairn.api.pagination import page
from cairn.domain.timestamps import iso
from cairn.projections.history import HistoryEntry

#: One aggregate's recorded events: (originator id, after version, limit) → entries.
ReadHistory = Callable[[str, int, int], list[HistoryEntry]]
READ_BATCH = 1000


def history_json(entry: HistoryEntry) -> dict[str, Any]:
    return {
        "position": entry.position,
        "version": entry.version,
        "type": entry.type,
        "clientId": entry.actor,
        "time": iso(entry.time),
        "data": entry.data,
    }


def history_page(call: Any, history: ReadHistory, originator_id: str, never_recorded: str) -> dict[str, Any]:
    """A page of one aggregate's events; ``never_recorded`` is the 404's message."""
    limit, after = page.position(call)
    entries = history(originator_id, after, limit + 1)
    if not entries and not after:
        raise ResourceNotFound(never_recorded)
    entries, more = page.cut(entries, limit, lambda entry: str(entry.version))
    return {"events": [history_json(entry) for entry in entries], **more}


def all_history(history: ReadHistory, originator_id: str) -> list[HistoryEntry]:
    """Every event of one aggregate, oldest first."""
    entries: list[HistoryEntry] = []
    while batch := history(originator_id, entries[-1].version if entries else 0, READ_BATCH):
        entries.extend(batch)
        if len(batch) < READ_BATCH:
            break
    return entries
