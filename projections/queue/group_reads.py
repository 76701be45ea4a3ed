"""Task groups as the web UI shows them: every task in one query, the dependency edges in another."""

from __future__ import annotations

from typing import Any

from cairn.projections.read_model import ReadModel


class GroupReadModel(ReadModel):
    def task_briefs(self, task_group_id: str) -> list[dict[str, Any]]:
        """``task_id``, ``state`` and ``name`` of every task of the group, in taskId order."""
        return self._rows("group_task_briefs", {"task_group_id": task_group_id})

    def dependency_edges(self, task_group_id: str) -> list[tuple[str, str]]:
        """(prerequisite, dependent) for every dependency a task of the group declares."""
        rows = self._rows("group_dependency_edges", {"task_group_id": task_group_id})
        return [(r["prerequisite"], r["dependent"]) for r in rows]

    def recent(self, limit: int = 50) -> list[dict[str, Any]]:
        return self._rows("recent_task_groups", {"limit": limit})
