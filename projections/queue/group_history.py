"""One page of a task group's history, read as one page: never every task's whole history.

The page's positions come from one query (``group_history_page``) that
walks the group's events in the database by key, in log order; only the
events on the page are then loaded and decoded, an aggregate's run of
versions at a time.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from cairn.domain.queue.task_group import task_group_key
from cairn.projections.history import ENVELOPE, HistoryEntry, event_type, redact


def group_history_page(
    log: Any, task_group_id: str, after: int, limit: int
) -> list[tuple[str | None, HistoryEntry]]:
    """Up to ``limit`` events of a group and its tasks past log position ``after``, in log order,
    each with its taskId (None for the group's own)."""
    group_key = task_group_key(task_group_id)
    with log.store.reading() as session:
        rows = session.rows(
            "group_history_page",
            {"task_group_id": task_group_id, "group_key": group_key, "after": after, "limit": limit},
        )
    wanted: dict[str, dict[int, int]] = defaultdict(dict)
    for row in rows:
        wanted[row["originator_id"]][row["version"]] = row["position"]
    page: list[tuple[str | None, HistoryEntry]] = []
    for originator_id, positions in wanted.items():
        task_id = None if originator_id == group_key else originator_id.removeprefix("task/")
        stored = log.recorder.select_events(originator_id, gt=min(positions) - 1, lte=max(positions))
        for record in stored:
            position = positions.get(record.originator_version)
            if position is not None:
                page.append((task_id, _entry(log, record, position)))
    page.sort(key=lambda item: item[1].position)
    return page


def _entry(log: Any, record: Any, position: int) -> HistoryEntry:
    event = log.mapper.to_domain_event(record)
    fields = {k: v for k, v in vars(event).items() if k not in ENVELOPE}
    return HistoryEntry(
        position=position,
        version=record.originator_version,
        type=event_type(event),
        actor=getattr(event, "actor", "unknown"),
        time=event.timestamp,
        data=redact(fields),
    )
