"""The hooks views: live hooks with their next scheduled date, and their fires.

Kept in the transaction of every hook event, so the scheduler and the
binding listener never read a hook older than its last change. The trigger
token is not in them: it is read, sealed, from the hook's aggregate.
"""

from __future__ import annotations

from typing import Any

import orjson

from cairn.domain.hooks.model import PREFIX, Hook
from cairn.domain.timestamps import iso
from cairn.projections.projection import Projection
from cairn.projections.store.session import SqlSession

ALL_VERSIONS = 2**31 - 1


class HookViews(Projection):
    name = "hooks"
    tables = ("hooks", "hook_fires")

    def register(self) -> None:
        self.on(Hook.Created, self.hook_defined)
        self.on(Hook.Recreated, self.hook_defined)
        self.on(Hook.DefinitionChanged, self.hook_defined)
        self.on(Hook.Removed, self.hook_removed)
        self.on(Hook.Fired, self.hook_fired)
        self.on(Hook.ScheduleMovedOn, self.schedule_moved_on)

    def hook_defined(self, session: SqlSession, e: Any, _: Any = None) -> None:
        group, hook = _ids(e)
        session.run(
            "upsert_hook",
            {
                "hook_group_id": group,
                "hook_id": hook,
                "definition": orjson.dumps(e.definition).decode(),
                "has_bindings": bool(e.definition.get("bindings")),
                "next_scheduled_date": e.next_scheduled_date,
                "bound_since": iso(e.timestamp),
            },
        )

    def hook_removed(self, session: SqlSession, e: Any, _: Any = None) -> None:
        group, hook = _ids(e)
        session.run("delete_hook", {"hook_group_id": group, "hook_id": hook})
        session.run("delete_hook_fires", {"hook_group_id": group, "hook_id": hook})

    def hook_fired(self, session: SqlSession, e: Any, _: Any = None) -> None:
        group, hook = _ids(e)
        session.run(
            "insert_hook_fire",
            {
                "hook_group_id": group,
                "hook_id": hook,
                "version": e.originator_version,
                "fired_by": e.fired_by,
                "task_id": e.task_id,
                "task_create_time": iso(e.timestamp),
                "result": e.result,
                "error": e.error,
            },
        )
        self.schedule_moved_on(session, e)

    def schedule_moved_on(self, session: SqlSession, e: Any, _: Any = None) -> None:
        group, hook = _ids(e)
        session.run(
            "set_hook_next_date",
            {"hook_group_id": group, "hook_id": hook, "next_scheduled_date": e.next_scheduled_date},
        )


def _ids(e: Any) -> tuple[str, str]:
    group, _, hook = e.originator_id.removeprefix(PREFIX).partition("/")
    return group, hook


def _hook_row(row: dict[str, Any]) -> dict[str, Any]:
    row["definition"] = orjson.loads(row["definition"])
    return row


class HookReads:
    def __init__(self, store: Any):
        self.store = store

    def _rows(self, name: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        with self.store.reading() as session:
            return session.rows(name, params or {})

    def groups(self) -> list[str]:
        return [row["hook_group_id"] for row in self._rows("hook_groups")]

    def hooks_in_group(self, hook_group_id: str) -> list[dict[str, Any]]:
        return [_hook_row(r) for r in self._rows("hooks_in_group", {"hook_group_id": hook_group_id})]

    def hook(self, hook_group_id: str, hook_id: str) -> dict[str, Any] | None:
        rows = self._rows("get_hook_row", {"hook_group_id": hook_group_id, "hook_id": hook_id})
        return _hook_row(rows[0]) if rows else None

    def with_bindings(self) -> list[dict[str, Any]]:
        return [_hook_row(r) for r in self._rows("hooks_with_bindings")]

    def due(self, now: str, limit: int) -> list[tuple[str, str]]:
        return [(r["hook_group_id"], r["hook_id"]) for r in self._rows("due_hooks", {"now": now, "limit": limit})]

    def soonest(self) -> str | None:
        rows = self._rows("soonest_hook_date")
        return rows[0]["soonest"] if rows else None

    def fires(self, hook_group_id: str, hook_id: str, before: int, limit: int) -> list[dict[str, Any]]:
        params = {"hook_group_id": hook_group_id, "hook_id": hook_id, "before": before or ALL_VERSIONS,
                  "limit": limit}
        return self._rows("hook_fires", params)
