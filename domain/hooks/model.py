"""Hooks: task templates that fire on a schedule, on a trigger, or on a Pulse message.

A hook is an aggregate; its definition, trigger token, removal and every
fire are events, so its last fires, its next scheduled date and its history
all come from the log. The trigger token appears in events only sealed.

Scheduling lives in the aggregate: ``next_scheduled_date`` is recorded with
each definition and moved on by the fire that uses it, so a due time is
fired once whichever process gets there (the second finds it moved), and a
hook whose due time passed while Cairn was down fires once for it and goes
on to the next time after now, not once per missed tick.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from eventsourcing.domain import event

from cairn.domain.aggregate import CairnAggregate
from cairn.domain.errors import Conflict, NotFound
from cairn.domain.hooks.schedule import next_due
from cairn.domain.timestamps import iso

PREFIX = "hook/"
#: How many fires of a hook the aggregate remembers the sources of, so that
#: a message delivered again does not fire it twice.
REMEMBERED_SOURCES = 1000


def hook_key(hook_group_id: str, hook_id: str) -> str:
    return f"{PREFIX}{hook_group_id}/{hook_id}"


class Hook(CairnAggregate):
    @staticmethod
    def create_id(hook_group_id: str, hook_id: str, **_: Any) -> str:
        return hook_key(hook_group_id, hook_id)

    @event("Created")
    def __init__(
        self, hook_group_id: str, hook_id: str, definition: dict[str, Any], sealed_token: str,
        next_scheduled_date: str | None,
    ) -> None:
        self.hook_group_id = hook_group_id
        self.hook_id = hook_id
        self.sources: list[str] = []
        self._live(definition, sealed_token, next_scheduled_date)

    def _live(self, definition: dict[str, Any], sealed_token: str, next_scheduled_date: str | None) -> None:
        self.definition = definition
        self.sealed_token = sealed_token
        self.next_scheduled_date = next_scheduled_date
        self.removed = False

    def recreate(self, definition: dict[str, Any], sealed_token: str, next_scheduled_date: str | None) -> None:
        if not self.removed:
            raise Conflict(f"hook `{self.hook_group_id}/{self.hook_id}` already exists.")
        self._recreated(definition, sealed_token, next_scheduled_date)

    @event("Recreated")
    def _recreated(self, definition: dict[str, Any], sealed_token: str, next_scheduled_date: str | None) -> None:
        self._live(definition, sealed_token, next_scheduled_date)

    def check_live(self) -> None:
        if self.removed:
            raise NotFound("No such hook")

    def change(self, definition: dict[str, Any], next_scheduled_date: str | None) -> None:
        self.check_live()
        self._definition_changed(definition, next_scheduled_date)

    @event("DefinitionChanged")
    def _definition_changed(self, definition: dict[str, Any], next_scheduled_date: str | None) -> None:
        self.definition = definition
        self.next_scheduled_date = next_scheduled_date

    def reset_trigger_token(self, sealed_token: str) -> None:
        self.check_live()
        self._trigger_token_reset(sealed_token)

    @event("TriggerTokenReset")
    def _trigger_token_reset(self, sealed_token: str) -> None:
        self.sealed_token = sealed_token

    def remove(self) -> None:
        if not self.removed:
            self._removed()

    @event("Removed")
    def _removed(self) -> None:
        self.removed = True
        self.next_scheduled_date = None

    # fires

    def due(self, now: datetime) -> str | None:
        """The scheduled time to fire for now, if one has come."""
        if self.removed or self.next_scheduled_date is None:
            return None
        return self.next_scheduled_date if self.next_scheduled_date <= iso(now) else None

    def has_fired_for(self, source: str) -> bool:
        return source in self.sources

    def record_fire(
        self, fired_by: str, task_id: str, result: str, error: str, now: datetime,
        scheduled_for: str | None = None, source: str | None = None,
    ) -> None:
        """Record a fire; a scheduled one moves the schedule on to its next time after ``now``."""
        self.check_live()
        next_date = self.next_scheduled_date
        if scheduled_for is not None:
            found = next_due(self.definition.get("schedule", []), now)
            next_date = iso(found) if found else None
        self._fired(fired_by, task_id, result, error, scheduled_for, source, next_date)

    def skip_scheduled(self, now: datetime) -> None:
        """A due time whose template declined to fire: only the schedule moves on."""
        found = next_due(self.definition.get("schedule", []), now)
        self._schedule_moved_on(iso(found) if found else None)

    @event("ScheduleMovedOn")
    def _schedule_moved_on(self, next_scheduled_date: str | None) -> None:
        self.next_scheduled_date = next_scheduled_date

    @event("Fired")
    def _fired(
        self, fired_by: str, task_id: str, result: str, error: str, scheduled_for: str | None,
        source: str | None, next_scheduled_date: str | None,
    ) -> None:
        self.next_scheduled_date = next_scheduled_date
        if source is not None:
            self.sources.append(source)
            del self.sources[:-REMEMBERED_SOURCES]
