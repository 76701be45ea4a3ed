"""Queue commands made on behalf of a role, with exactly the scopes of that role, as the queue's API would.

A hook fires its task with the scopes of ``hook-id:<group>/<hook>``; a GitHub
delivery creates its tasks with ``assume:repo:github.com/<owner>/<repo>:...``
and the route and scheduler scopes Taskcluster-GitHub adds. Neither may do
more than the queue's own endpoint would allow those scopes: the endpoint's
scope expression (``createTask``, ``rerunTask``, ``sealTaskGroup``,
``cancelTaskGroup``) is rendered for the request and checked against the
expansion of the given scopes — never those of whoever caused the event.
The command is then carried out by the queue service, caused by ``actor``.

The queue's endpoint declarations live in the API; this module sits in the
composition root so that the hooks' and the GitHub consumers' wiring can
share it without the API knowing about either.
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
from cairn.domain.errors import DomainError
from cairn.domain.queue import scope_requirements
from cairn.domain.queue.service import QueueService
from cairn.domain.queue.task import Task

TASK_SCHEMA = "/schemas/queue/v1/create-task-request.json"


class Refused(DomainError):
    """The scopes given do not allow the queue command, or its input is invalid."""

    def __init__(self, message: str, code: str = "InputError", missing: Any = None):
        super().__init__(message)
        self.code = code
        self.missing = missing


def endpoint_scopes(name: str, params: dict[str, Any]) -> Any:
    """The scope expression the queue's endpoint ``name`` requires for ``params``."""
    endpoint = next(e for e in queue.endpoints if e.name == name)
    template = scope_template(endpoint)
    return None if template is None else template.render(params)


class ScopedQueue:
    def __init__(self, queue_service: QueueService, expand: Callable[[list[str]], list[str]]):
        self.queue = queue_service
        self.expand = expand

    def _authorize(self, scopes: list[str], required: Any, what: str) -> None:
        if required is None:
            return
        expanded = self.expand(list(scopes))
        if not satisfies(expanded, required):
            missing = remove_given_scopes(expanded, required)
            raise Refused(
                f"{what}; it is missing:\n\n```\n{format_expression(missing)}\n```",
                "InsufficientScopes", missing,
            )

    def check_task(self, scopes: list[str], task_id: str, definition: dict[str, Any], who: str) -> None:
        """Refuse (``Refused``) a definition the schema or ``scopes`` do not allow; change nothing."""
        problems = load_schemas().errors(TASK_SCHEMA, definition)
        if problems:
            raise Refused(f"The task does not match the schema {TASK_SCHEMA}#:\n{problems}", "InputValidationError")
        required = endpoint_scopes("createTask", scope_requirements.create_task(task_id, definition))
        self._authorize(scopes, required, f"{who} does not have sufficient scopes to create the task")

    def create_task(self, scopes: list[str], task_id: str, definition: dict[str, Any], now: datetime,
                    actor: str, who: str = "The role") -> Task:
        """createTask with ``scopes`` only: idempotent for the same definition, ``Conflict`` for another."""
        self.check_task(scopes, task_id, definition, who)
        with acting_as(actor):
            return self.queue.define_task(task_id, dict(definition), now)

    def rerun_task(self, scopes: list[str], task_id: str, now: datetime, actor: str, who: str = "The role") -> Task:
        """rerunTask with ``scopes`` only: a new run for a resolved task; an unresolved one is left as it is."""
        task = self.queue.task(task_id)
        required = endpoint_scopes("rerunTask", scope_requirements.task_command(task))
        self._authorize(scopes, required, f"{who} does not have sufficient scopes to rerun the task")
        with acting_as(actor):
            return self.queue.rerun_task(task_id, now)

    def cancel_task_group(self, scopes: list[str], task_group_id: str, now: datetime, actor: str,
                          who: str = "The role") -> list[str]:
        """sealTaskGroup then cancelTaskGroup with ``scopes`` only; returns the cancelled task ids."""
        group = self.queue.task_group(task_group_id)
        params = scope_requirements.task_group_command(task_group_id, group.scheduler_id)
        self._authorize(scopes, endpoint_scopes("sealTaskGroup", params), f"{who} cannot seal the task group")
        self._authorize(scopes, endpoint_scopes("cancelTaskGroup", params), f"{who} cannot cancel the task group")
        with acting_as(actor):
            self.queue.seal_task_group(task_group_id, now)
            return self.queue.cancel_task_group(task_group_id, now)
