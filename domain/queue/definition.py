"""A createTask body, made into the task definition the queue records.

One normalisation, used both for authorization (which scopes the request
needs) and for the definition itself, so the two cannot disagree:
:func:`with_defaults` fills in Taskcluster's defaults and checks nothing;
:func:`normalise_definition` adds the checks (queue id, times, scopes) that
turn a bad body into a 400.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from cairn.domain.errors import InvalidInput
from cairn.domain.queue.task_queue_id import TaskQueueId
from cairn.domain.timestamps import iso, parse_time

MAX_DEADLINE = timedelta(days=5)
CREATED_SKEW = timedelta(minutes=15)
DEFAULT_EXPIRY = timedelta(days=365)
DEFAULTS: tuple[tuple[str, Any], ...] = (
    ("schedulerId", "-"),
    ("projectId", "none"),
    ("dependencies", []),
    ("requires", "all-completed"),
    ("routes", []),
    ("priority", "lowest"),
    ("retries", 5),
    ("scopes", []),
    ("tags", {}),
    ("extra", {}),
)


def with_defaults(task_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """The body with every omitted property defaulted; ``normal`` priority is ``lowest``."""
    d = dict(body)
    d.setdefault("taskGroupId", task_id)
    for key, default in DEFAULTS:
        d.setdefault(key, default)
    if d["priority"] == "normal":
        d["priority"] = "lowest"
    return d


def normalise_definition(task_id: str, body: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """A createTask body with Taskcluster's defaults filled in and its limits checked."""
    d = dict(body)
    d["taskQueueId"] = _task_queue_id(d)
    created, deadline = parse_time(d["created"]), parse_time(d["deadline"])
    if created < now - CREATED_SKEW:
        raise InvalidInput("`created` cannot be in the past (max 15min drift)")
    if created > now + CREATED_SKEW:
        raise InvalidInput("`created` cannot be in the future (max 15min drift)")
    if created > deadline:
        raise InvalidInput("`deadline` cannot be earlier than `created`")
    if deadline < now:
        raise InvalidInput("`deadline` cannot be in the past")
    if deadline - now > MAX_DEADLINE + CREATED_SKEW:
        raise InvalidInput("`deadline` cannot be more than 5 days into the future")
    expires = parse_time(d["expires"]) if d.get("expires") else deadline + DEFAULT_EXPIRY
    if expires < deadline:
        raise InvalidInput("`expires` cannot be before `deadline`")
    d.update(created=iso(created), deadline=iso(deadline), expires=iso(expires))
    d = with_defaults(task_id, d)
    if any(scope.endswith("**") for scope in d["scopes"]):
        raise InvalidInput("scopes must not end with `**`")
    return d


def _task_queue_id(d: dict[str, Any]) -> str:
    """The definition's one queue id; provisionerId and workerType leave the definition."""
    queue_id = d.get("taskQueueId")
    provisioner, worker_type = d.pop("provisionerId", None), d.pop("workerType", None)
    halves = provisioner is not None and worker_type is not None
    if queue_id:
        if halves and str(TaskQueueId(provisioner, worker_type)) != queue_id:
            raise InvalidInput('taskQueueId must match "provisionerId/workerType"')
        return queue_id
    if halves:
        return str(TaskQueueId(provisioner, worker_type))
    raise InvalidInput("at least a provisionerId and a workerType or a taskQueueId must be provided")
