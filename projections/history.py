"""The recorded history of one aggregate: its events, oldest first, with their log positions.

Read straight from the event store, so it is never behind. What an event
says is shown as recorded, except for anything that looks like a secret:
`redact` drops every field whose name mentions a token, secret, password
or credential, at any depth, so a sealed access token never leaves
through the history.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

#: Fields every Cairn event has; the history shows them apart from the event's own data.
ENVELOPE = frozenset(
    {"originator_id", "originator_version", "originator_topic", "timestamp", "actor"}
)
_SECRET_NAME = re.compile(r"token|secret|password|credential", re.IGNORECASE)


@dataclass(frozen=True)
class HistoryEntry:
    position: int
    version: int
    type: str
    actor: str
    time: datetime
    data: dict[str, Any]


def redact(fields: Mapping[str, Any]) -> dict[str, Any]:
    return {
        name: _redact_value(value)
        for name, value in fields.items()
        if not _SECRET_NAME.search(name)
    }


def _redact_value(value: Any) -> Any:
    if isinstance(value, Mapping):
        return redact(value)
    if isinstance(value, list):
        return [_redact_value(item) for item in value]
    return value


def event_type(event: Any) -> str:
    """`Client.ScopesChanged` → `ClientScopesChanged`."""
    return type(event).__qualname__.replace(".", "")


def read_history(log: Any, originator_id: str, after: int = 0, limit: int = 1000) -> list[HistoryEntry]:
    """Up to ``limit`` events of one aggregate with versions above ``after``.

    ``log`` is the :class:`~cairn.domain.event_log.EventLog`: its store gives
    each event's position, its recorder and mapper the events themselves.
    """
    with log.store.reading() as session:
        rows = session.rows(
            "select_event_positions",
            {"originator_id": originator_id, "after": after, "limit": limit},
        )
    if not rows:
        return []
    positions = {row["version"]: row["position"] for row in rows}
    stored = log.recorder.select_events(originator_id, gt=after, lte=max(positions))
    entries = []
    for record in stored:
        event = log.mapper.to_domain_event(record)
        fields = {k: v for k, v in vars(event).items() if k not in ENVELOPE}
        entries.append(
            HistoryEntry(
                position=positions[record.originator_version],
                version=record.originator_version,
                type=event_type(event),
                actor=getattr(event, "actor", "unknown"),
                time=event.timestamp,
                data=redact(fields),
            )
        )
    return entries
