"""Creating a hook's task as the queue's createTask would, with the scopes of the hook's role only.

The task definition is checked against the queue's request schema, and the
queue's own scope expression for createTask is rendered for it and checked
against the expansion of ``assume:hook-id:<hookGroupId>/<hookId>`` — not
against the scopes of whoever fired the hook. The task is then defined by
the queue service, caused by ``cairn/hooks``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from cairn.api.call import scope_template
from cairn.api.queue.service import queue
from cairn.api.schemas import load_schemas
from cairn.domain.aggregate import acting_as
from cairn.domain.auth.scopes import format_expression, remove_given_scopes, satisfies
from cairn.domain.hooks.firing import TaskRefused
from cairn.domain.hooks.model import Hook
from cairn.domain.queue import scope_requirements
from cairn.domain.queue.service import QueueService

ACTOR = "cairn/hooks"
TASK_SCHEMA = "/schemas/queue/v1/create-task-request.json"


def _create_task_scopes(task_id: str, body: dict[str, Any]) -> Any:
    """The queue's createTask scope expression for this definition."""
    endpoint = next(e for e in queue.endpoints if e.name == "createTask")
    template = scope_template(endpoint)
    assert template is not None
    return template.render(scope_requirements.create_task(task_id, body))


def hook_task_creator(
    queue_service: QueueService, expand: Callable[[list[str]], list[str]]
) -> Callable[[Hook, str, dict[str, Any], datetime], None]:
    def create(hook: Hook, task_id: str, definition: dict[str, Any], now: datetime) -> None:
        problems = load_schemas().errors(TASK_SCHEMA, definition)
        if problems:
            raise TaskRefused(f"The task does not match the schema {TASK_SCHEMA}#:\n{problems}",
                              "InputValidationError")
        role = f"hook-id:{hook.hook_group_id}/{hook.hook_id}"
        scopes = expand([f"assume:{role}"])
        required = _create_task_scopes(task_id, definition)
        if required is not None and not satisfies(scopes, required):
            missing = remove_given_scopes(scopes, required)
            raise TaskRefused(
                f"The role `{role}` does not have sufficient scopes to create the task; it is missing:"
                f"\n\n```\n{format_expression(missing)}\n```",
                "InsufficientScopes",
            )
        with acting_as(ACTOR):
            queue_service.define_task(task_id, dict(definition), now)

    return create
