"""The queue views as the queue service reads them, inside its transaction."""

from __future__ import annotations

from typing import Any

import orjson

from cairn.domain.queue.service import Resolution
from cairn.projections.read_model import ReadModel


class QueueReadModel(ReadModel):
    # QueueReads, for commands

    def share_prerequisites(self, task_ids: list[str]) -> dict[str, dict[str, Any]]:
        if not task_ids:
            return {}
        rows = self._rows("share_task_rows", {"ids": orjson.dumps(task_ids).decode()})
        return {r["task_id"]: r for r in rows}

    def share_task_group(self, task_group_id: str) -> dict[str, Any] | None:
        return self._one("share_task_group", {"task_group_id": task_group_id})

    def lock_task_group(self, task_group_id: str) -> dict[str, Any] | None:
        return self._one("lock_task_group", {"task_group_id": task_group_id})

    def lock_task(self, task_id: str) -> int | None:
        row = self._one("lock_task_row", {"task_id": task_id})
        return _version(row["version"]) if row else None

    def lock_task_to_resolve(self, task_id: str, completed: bool) -> tuple[int | None, Resolution]:
        locked, group, reads = self._rows_together(
            ("lock_task_row", {"task_id": task_id}), *_resolution_queries(task_id, completed)
        )
        return (_version(locked[0]["version"]) if locked else None), _resolution(completed, group, reads)

    def after_resolution(self, task_id: str, completed: bool) -> Resolution:
        group, reads = self._rows_together(*_resolution_queries(task_id, completed))
        return _resolution(completed, group, reads)

    def take_pending(self, task_queue_id: str, count: int, worker_key: str) -> tuple[list[tuple[str, int, int]], int]:
        rows = self._rows("take_pending", {"task_queue_id": task_queue_id, "count": count, "worker_key": worker_key})
        worker_version = int(rows[0]["worker_version"] or 0) if rows else 0
        return [(r["task_id"], int(r["run_id"]), _version(r["version"])) for r in rows], worker_version

    def unresolved_group_tasks(self, task_group_id: str) -> list[str]:
        return [r["task_id"] for r in self._rows("unresolved_group_task_ids", {"task_group_id": task_group_id})]

    def group_expires(self, task_group_id: str) -> str:
        """When a group expires: with its latest-expiring task."""
        return (self._one("group_summary", {"task_group_id": task_group_id}) or {}).get("expires") or ""

    # reads for the API

    def task_rows(self, task_ids: list[str]) -> dict[str, dict[str, Any]]:
        if not task_ids:
            return {}
        rows = self._rows("task_rows", {"ids": orjson.dumps(task_ids).decode()})
        return {r["task_id"]: r for r in rows}

    def task_group_row(self, task_group_id: str) -> dict[str, Any] | None:
        return self._one("get_task_group", {"task_group_id": task_group_id})

    def group_summary(self, task_group_id: str) -> dict[str, Any]:
        return self._one("group_summary", {"task_group_id": task_group_id}) or {}

    def group_tasks(self, task_group_id: str, after: str, limit: int) -> list[dict[str, Any]]:
        return self._rows("list_group_tasks", {"task_group_id": task_group_id, "after": after, "limit": limit})

    def group_task_ids(self, task_group_id: str) -> list[str]:
        return [r["task_id"] for r in self._rows("group_task_ids", {"task_group_id": task_group_id})]

    def dependents(self, task_id: str, after: str, limit: int) -> list[str]:
        rows = self._rows("list_dependents", {"prerequisite": task_id, "after": after, "limit": limit})
        return [r["dependent"] for r in rows]

    def expired_claims(self, now: str, limit: int) -> list[tuple[str, int]]:
        return [(r["task_id"], int(r["run_id"])) for r in self._rows("expired_claims", {"now": now, "limit": limit})]

    def past_deadline(self, now: str, limit: int) -> list[str]:
        return [r["task_id"] for r in self._rows("past_deadline", {"now": now, "limit": limit})]

    def past_expiry(self, now: str, limit: int) -> list[str]:
        return [r["task_id"] for r in self._rows("past_expiry", {"now": now, "limit": limit})]

    def pending_count(self, task_queue_id: str) -> int:
        row = self._one("count_pending", {"task_queue_id": task_queue_id})
        return int(row["n"]) if row else 0

    def claimed_count(self, task_queue_id: str) -> int:
        row = self._one("count_claimed", {"task_queue_id": task_queue_id})
        return int(row["n"]) if row else 0


def _resolution_queries(task_id: str, completed: bool) -> tuple[tuple[str, dict[str, Any]], ...]:
    """The group's row locked, then what the resolution decides on, read once that lock is held."""
    return (
        ("lock_group_of_task", {"task_id": task_id}),
        ("resolution_reads", {"task_id": task_id, "completed": completed}),
    )


def _resolution(completed: bool, group: list[dict[str, Any]], reads: list[dict[str, Any]]) -> Resolution:
    row = reads[0] if reads else {}
    ready = row.get("ready") or []
    if isinstance(ready, str):  # SQLite's JSON is text
        ready = orjson.loads(ready)
    return Resolution(
        completed=completed,
        ready=sorted(ready),
        group=group[0] if group else None,
        unresolved=int(row.get("unresolved") or 0),
        expires=row.get("expires") or "",
    )


def _version(value: Any) -> int | None:
    """An aggregate version read beside a view row (None: none found, so no hint)."""
    return int(value) if value is not None else None
