"""Task groups as the web UI shows them: every task of a group, with its dependencies, in one query."""

from __future__ import annotations

from typing import Any

import orjson

from cairn.projections.read_model import ReadModel


class GroupReadModel(ReadModel):
    def task_briefs(self, task_group_id: str) -> list[dict[str, Any]]:
        """``task_id``, ``state``, ``name`` and ``dependencies`` of every task of the group, in taskId order."""
        rows = self._rows("group_task_briefs", {"task_group_id": task_group_id})
        for row in rows:
            row["dependencies"] = orjson.loads(row["dependencies"] or "[]")
        return rows

    def recent(self, limit: int = 50) -> list[dict[str, Any]]:
        return self._rows("recent_task_groups", {"limit": limit})
