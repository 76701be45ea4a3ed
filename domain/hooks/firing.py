"""Firing a hook: render its task template with JSON-e, have the queue create the task, record the fire.

The context is Taskcluster's: ``firedBy``, ``taskId`` and ``now`` always;
``payload`` (and ``clientId`` for triggerHook) for triggers; ``payload``,
``exchange`` and ``routingKey`` for a Pulse message. A template that
renders to nothing declines to fire; nothing is recorded. Otherwise the fire
is recorded as an event whatever happens — ``success`` with the task id, or
``error`` with the reason (a template error, or the queue refusing the task,
typically because the role ``hook-id:<hookGroupId>/<hookId>`` lacks a scope).

Scheduled and message fires can be repeated (another process, a redelivery),
so their task id and their ``now`` are fixed by what they fire for — the due
time, the message — and the queue's createTask is idempotent for the same
definition under the same id; the fire itself is recorded once (the due time
has moved on, the message is remembered).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jsone
import slugid
from jsonschema import Draft7Validator, FormatChecker

from cairn.domain.errors import Conflict, DomainError, InvalidInput
from cairn.domain.event_log import EventLog
from cairn.domain.hooks.model import Hook
from cairn.domain.templating import derived_task_id
from cairn.domain.timestamps import iso, parse_time, utcnow

SLUGID = re.compile(r"[A-Za-z0-9_-]{8}[Q-T][A-Za-z0-9_-][CGKOSWaeimquy26-][A-Za-z0-9_-]{10}[AQgw]")
MAX_ERROR = 128 * 1024


class TaskRefused(DomainError):
    """The queue refused the hook's task."""

    def __init__(self, message: str, code: str = "InputError"):
        super().__init__(message)
        self.code = code


#: create_task(hook, task_id, definition, now): raises TaskRefused (or another DomainError).
CreateTask = Callable[[Hook, str, dict[str, Any], datetime], None]


@dataclass(frozen=True)
class FireOutcome:
    task_id: str | None
    error: str = ""
    refusal: DomainError | None = None


def payload_problems(trigger_schema: dict[str, Any], payload: Any) -> str | None:
    errors = sorted(Draft7Validator(trigger_schema, format_checker=FormatChecker()).iter_errors(payload), key=str)
    if not errors:
        return None
    return "; ".join(f"{'/'.join(map(str, e.absolute_path)) or 'payload'}: {e.message}" for e in errors)


def render_task(template: dict[str, Any], context: dict[str, Any], task_id: str, now: datetime) -> dict[str, Any] | None:
    """The task definition a template gives, with Taskcluster's defaults; None when it declines."""
    task = jsone.render(template, {**context, "now": iso(now), "taskId": task_id})
    if task is None:
        return None
    if not isinstance(task, dict):
        raise InvalidInput("the hook's task template did not render to an object")
    task.setdefault("created", iso(now))
    task.setdefault("deadline", iso(now + timedelta(days=1)))
    task.setdefault("expires", iso(now + timedelta(days=30)))
    task.setdefault("taskGroupId", task_id)
    return task


class HookFiring:
    def __init__(self, log: EventLog, create_task: CreateTask):
        self.log = log
        self.create_task = create_task

    def trigger(self, hook: Hook, payload: dict[str, Any], fired_by: str, now: datetime,
                client_id: str | None = None) -> FireOutcome:
        """triggerHook and triggerHookWithToken: a payload the triggerSchema refuses fires nothing."""
        problems = payload_problems(hook.definition["triggerSchema"], payload)
        if problems:
            raise InvalidInput(problems)
        task_id = payload.get("taskId")
        if task_id is not None and not (isinstance(task_id, str) and SLUGID.fullmatch(task_id)):
            raise InvalidInput(f"Invalid taskId format: {task_id}")
        context: dict[str, Any] = {"firedBy": fired_by, "payload": payload}
        if client_id:
            context["clientId"] = client_id
        return self._fire(hook, context, task_id or slugid.nice(), now, now)

    def fire_scheduled(self, hook: Hook, now: datetime) -> FireOutcome | None:
        """Fire for the hook's due time, if it has come; None if it has not."""
        due = hook.due(now)
        if due is None:
            return None
        task_id = derived_task_id(hook.id, "schedule", due)
        return self._fire(hook, {"firedBy": "schedule"}, task_id, now, parse_time(due), scheduled_for=due)

    def fire_for_message(self, hook: Hook, message: Any, when: datetime, now: datetime) -> FireOutcome | None:
        """Fire for a matching Pulse message, once per message; None if its payload does not fit."""
        if hook.has_fired_for(message.message_id):
            return None
        if payload_problems(hook.definition["triggerSchema"], message.body):
            return None
        context = {"firedBy": "pulseMessage", "payload": message.body, "exchange": message.exchange,
                   "routingKey": message.routing_key}
        task_id = derived_task_id(hook.id, "message", message.message_id)
        return self._fire(hook, context, task_id, now, when, source=message.message_id)

    def _fire(self, hook: Hook, context: dict[str, Any], task_id: str, now: datetime, render_at: datetime,
              scheduled_for: str | None = None, source: str | None = None) -> FireOutcome:
        """Fire at ``now``, rendering as of ``render_at`` (a repeated fire renders the same task)."""
        outcome = FireOutcome(task_id)
        try:
            task = render_task(hook.definition["task"], context, task_id, render_at)
        except (jsone.JSONTemplateError, InvalidInput) as e:
            outcome = FireOutcome(task_id, f"rendering the task template: {e}", InvalidInput(str(e)))
        else:
            if task is None:
                if scheduled_for is not None:
                    self._record(hook.id, context["firedBy"], task_id, "", now, scheduled_for, source, declined=True)
                return FireOutcome(None)
            try:
                self.create_task(hook, task_id, task, now)
            except DomainError as e:
                # A task id fixed by the fire is taken only by an earlier attempt
                # of this same fire (rendered at another moment): that is done.
                repeated = isinstance(e, Conflict) and (scheduled_for is not None or source is not None)
                if not repeated:
                    outcome = FireOutcome(task_id, e.message[:MAX_ERROR], e)
        result = "error" if outcome.error else "success"
        self._record(hook.id, context["firedBy"], task_id, outcome.error, now, scheduled_for, source,
                     result=result)
        return outcome

    def _record(self, key: str, fired_by: str, task_id: str, error: str, now: datetime,
                scheduled_for: str | None, source: str | None, result: str = "success",
                declined: bool = False) -> None:
        def apply() -> None:
            hook = self.log.get(key)
            if hook is None or hook.removed:
                return
            if scheduled_for is not None and hook.next_scheduled_date != scheduled_for:
                return  # another process recorded this due time
            if source is not None and hook.has_fired_for(source):
                return
            # The schedule moves on to its first time after the fire is recorded,
            # however long creating the task took.
            recorded_at = max(now, utcnow())
            if declined:
                hook.skip_scheduled(recorded_at)
            else:
                hook.record_fire(fired_by, task_id, result, error, recorded_at, scheduled_for, source)
            self.log.save(hook)

        self.log.command(apply)
