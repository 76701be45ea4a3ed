"""Creating a hook's task as the queue's createTask would, with the scopes of the hook's role only.

The definition is checked against the queue's request schema, and the
queue's own scope expression for createTask against the expansion of
``assume:hook-id:<hookGroupId>/<hookId>`` — not against the scopes of
whoever fired the hook (``cairn/scoped_queue.py``, shared with GitHub's
task creation). The task is then defined by the queue service, caused by
``cairn/hooks``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from cairn.domain.hooks.firing import TaskRefused
from cairn.domain.hooks.model import Hook
from cairn.domain.queue.service import QueueService
from cairn.scoped_queue import Refused, ScopedQueue

ACTOR = "cairn/hooks"


def hook_task_creator(
    queue_service: QueueService, expand: Callable[[list[str]], list[str]]
) -> Callable[[Hook, str, dict[str, Any], datetime], None]:
    scoped = ScopedQueue(queue_service, expand)

    def create(hook: Hook, task_id: str, definition: dict[str, Any], now: datetime) -> None:
        role = f"hook-id:{hook.hook_group_id}/{hook.hook_id}"
        try:
            scoped.create_task([f"assume:{role}"], task_id, definition, now, ACTOR, who=f"The role `{role}`")
        except Refused as refused:
            raise TaskRefused(refused.message, refused.code) from None

    return create
