"""The Pulse messages Taskcluster would publish for each event in the log.

:func:`messages_for` takes one event and the aggregate's state *right after
that event*, and returns the messages Taskcluster publishes for the
equivalent operation: exchange, primary routing key, ``route.<route>`` CCs
and body. It reads nothing else, so replaying the log re-derives the same
messages with the same ids, and a receiver can drop the duplicates an
at-least-once publisher sends.

Why the state after *this* event, and not after the save: one save can
record several events of one aggregate, and each message describes the task
as it stood at its own event. createTask with no dependencies records
``Defined`` then ``RunPending``: task-defined carries the status with state
``unscheduled`` and no runs (Taskcluster's ``initialStatus``), task-pending
the status with run 0 pending. A caller that folds the whole save first and
then asks for the messages of each event would give every message the last
status; :func:`messages_for` refuses such a state (its version differs from
the event's) rather than publish it.

Where that differs from Taskcluster: a run resolved ``exception`` that is
retried records ``RunResolved`` then ``RunPending`` in one save. Taskcluster
publishes task-exception and task-pending both with the status after the
retry (state ``pending``); here task-exception carries the status at the
resolution (state ``exception``, retries not yet spent) and task-pending the
one after the retry. Whether the run was retried shows in the task-pending
for the next run that follows it; the exception's ``reasonResolved`` is
the same in both.

Other differences follow from events being finer than operations: an
updateClient or updateRole that changes two fields records two events and
announces two ``*-updated`` messages (Taskcluster: one, even for no change);
changeTaskGroupPriority records each task's PriorityChanged, so each task
announces task-priority-changed besides the group's summary (Taskcluster:
the summary only).
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cairn.domain.auth.model import Client, Role
from cairn.domain.hooks.model import Hook
from cairn.domain.notify.model import Notification
from cairn.domain.purge_cache.model import PurgeRequest
from cairn.domain.queue.task import Task
from cairn.domain.queue.task_group import TaskGroup

QUEUE_EXCHANGES = "exchange/taskcluster-queue/v1/"
AUTH_EXCHANGES = "exchange/taskcluster-auth/v1/"
NOTIFY_EXCHANGE = "exchange/taskcluster-notify/v1/notification"
HOOKS_EXCHANGES = "exchange/taskcluster-hooks/v1/"
PURGE_CACHE_EXCHANGE = "exchange/taskcluster-purge-cache/v1/purge-cache"
MESSAGE_VERSION = 1

#: Every exchange Cairn publishes on, with the schema of its messages.
EXCHANGE_SCHEMAS: dict[str, str] = {
    **{
        QUEUE_EXCHANGES + name: f"/schemas/queue/v1/{schema}.json"
        for name, schema in (
            ("task-defined", "task-defined-message"),
            ("task-pending", "task-pending-message"),
            ("task-running", "task-running-message"),
            ("artifact-created", "artifact-created-message"),
            ("task-completed", "task-completed-message"),
            ("task-failed", "task-failed-message"),
            ("task-exception", "task-exception-message"),
            ("task-group-resolved", "task-group-changed-message"),
            ("task-group-sealed", "task-group-changed-message"),
            ("task-priority-changed", "task-priority-changed-message"),
            ("task-group-priority-changed", "task-group-priority-changed-message"),
        )
    },
    **{
        AUTH_EXCHANGES + f"{kind}-{change}": f"/schemas/auth/v1/{kind}-message.json"
        for kind in ("client", "role")
        for change in ("created", "updated", "deleted")
    },
    NOTIFY_EXCHANGE: "/schemas/notify/v1/notification-message.json",
    **{
        HOOKS_EXCHANGES + f"hook-{change}": "/schemas/hooks/v1/pulse-hook-changed-message.json"
        for change in ("created", "updated", "deleted")
    },
    PURGE_CACHE_EXCHANGE: "/schemas/purge-cache/v1/purge-cache-message.json",
}

# Message ids are UUIDs named by (originator id, version, index) in this
# namespace: fixed length for AMQP's message-id, whatever the length of the id.
_MESSAGE_ID_NAMESPACE = uuid.UUID("9f3b6c1e-5a7d-4e1b-8c2a-6d0e4f1a2b3c")


@dataclass(frozen=True)
class PulseMessage:
    exchange: str
    routing_key: str
    cc: list[str]
    body: dict[str, Any]
    message_id: str

    @property
    def schema(self) -> str:
        return EXCHANGE_SCHEMAS[self.exchange]


Draft = tuple[str, str, list[str], dict[str, Any]]
Builder = Callable[[Any, Any], list[Draft]]


def message_id(originator_id: str, originator_version: int, index: int) -> str:
    return str(uuid.uuid5(_MESSAGE_ID_NAMESPACE, f"{originator_id}\n{originator_version}\n{index}"))


def messages_for(event: Any, aggregate: Any) -> list[PulseMessage]:
    """The messages for ``event``, given its aggregate's state right after it."""
    build = _BUILDERS.get(type(event))
    if build is None:
        return []
    if aggregate is None or aggregate.version != event.originator_version:
        raise ValueError(
            f"messages for {type(event).__qualname__} of {event.originator_id} "
            f"v{event.originator_version} need the state right after it, "
            f"not v{getattr(aggregate, 'version', None)}"
        )
    origin = (event.originator_id, event.originator_version)
    return [
        PulseMessage(exchange, key, cc, copy.deepcopy(body), message_id(*origin, i))
        for i, (exchange, key, cc, body) in enumerate(build(event, aggregate))
    ]


# tasks
#
# The primary key is built from the body, as Taskcluster does: runId,
# workerGroup and workerId appear when the body carries them, `_` otherwise.


def _task_message(name: str, task: Task, /, **fields: Any) -> Draft:
    status = task.status()
    status.setdefault("priority", task.priority)  # Taskcluster's status carries it
    body = {"version": MESSAGE_VERSION, "status": status, **fields}
    words = [
        "primary",
        task.task_id,
        fields.get("runId"),
        fields.get("workerGroup"),
        fields.get("workerId"),
        status["provisionerId"],
        status["workerType"],
        status["schedulerId"],
        status["taskGroupId"],
        None,  # reserved
    ]
    key = ".".join("_" if word is None else str(word) for word in words)
    return QUEUE_EXCHANGES + name, key, [f"route.{r}" for r in task.definition["routes"]], body


def _tags(task: Task) -> dict[str, Any]:
    return {"tags": task.definition.get("tags", {})}


def _workers(run: dict[str, Any]) -> dict[str, str]:
    return {k: run[k] for k in ("workerGroup", "workerId") if k in run}


def _task_defined(event: Any, task: Task) -> list[Draft]:
    return [_task_message("task-defined", task, task=_tags(task))]


def _run_pending(event: Any, task: Task) -> list[Draft]:
    return [_task_message("task-pending", task, task=_tags(task), runId=event.run_id)]


def _run_claimed(event: Any, task: Task) -> list[Draft]:
    run = task.run(event.run_id)
    return [
        _task_message(
            "task-running",
            task,
            task=_tags(task),
            runId=event.run_id,
            workerGroup=run["workerGroup"],
            workerId=run["workerId"],
            takenUntil=run["takenUntil"],
        )
    ]


def _run_resolved(event: Any, task: Task) -> list[Draft]:
    run = task.run(event.run_id)
    workers = _workers(run)
    if event.state == "exception" and event.reason_resolved == "deadline-exceeded":
        workers = {}  # Taskcluster's deadline resolver names no worker
    name = {"completed": "task-completed", "failed": "task-failed"}.get(event.state, "task-exception")
    return [_task_message(name, task, task=_tags(task), runId=event.run_id, **workers)]


def _unscheduled_resolved(event: Any, task: Task) -> list[Draft]:
    return [_task_message("task-exception", task, task=_tags(task), runId=event.run_id)]


def _priority_changed(event: Any, task: Task) -> list[Draft]:
    # The event records only the new priority. Until it records the old one
    # too, the priority the task was defined with stands in: right for a
    # task's first change, stale after that.
    old = getattr(event, "old_priority", None) or task.definition["priority"]
    return [_task_message("task-priority-changed", task, oldPriority=old, newPriority=event.priority)]


#: Storage types announced when created; ``object`` is announced when its
#: upload is finished, ``s3`` never (its schema has no place for it).
ANNOUNCED_ON_CREATION = frozenset({"reference", "link", "error"})


def _artifact_message(task: Task, run_id: int, artifact: dict[str, Any]) -> Draft:
    run = task.run(run_id)
    fields = {k: artifact[k] for k in ("storageType", "name", "expires", "contentType")}
    return _task_message("artifact-created", task, runId=run_id, artifact=fields, **_workers(run))


def _artifact_recorded(event: Any, task: Task) -> list[Draft]:
    # Created or replaced (a reference's new URL, a link in its place, a
    # later expiry): Taskcluster announces either as created.
    artifact = task.artifact(event.run_id, event.name)
    if artifact is None or artifact["storageType"] not in ANNOUNCED_ON_CREATION:
        return []
    return [_artifact_message(task, event.run_id, artifact)]


def _artifact_finished(event: Any, task: Task) -> list[Draft]:
    artifact = task.artifact(event.run_id, event.name)
    return [_artifact_message(task, event.run_id, artifact)] if artifact else []


# task groups


def _group_message(name: str, group: TaskGroup, /, **fields: Any) -> Draft:
    body = {
        "version": MESSAGE_VERSION,
        "taskGroupId": group.task_group_id,
        "schedulerId": group.scheduler_id,
        **{k: v for k, v in fields.items() if v is not None},
    }
    key = f"primary.{group.task_group_id}.{group.scheduler_id}._"
    return QUEUE_EXCHANGES + name, key, [], body


def _group_expires(event: Any, group: TaskGroup) -> str | None:
    # Taskcluster sends the group's expiry (its latest task's). Neither the
    # group's events nor the aggregate record it yet; read it from either
    # once one does.
    return getattr(event, "expires", None) or getattr(group, "expires", None)


def _group_sealed(event: Any, group: TaskGroup) -> list[Draft]:
    expires = _group_expires(event, group)
    return [_group_message("task-group-sealed", group, expires=expires, sealed=group.sealed)]


def _group_resolved(event: Any, group: TaskGroup) -> list[Draft]:
    expires = _group_expires(event, group)
    return [_group_message("task-group-resolved", group, expires=expires, sealed=group.sealed)]


def _group_priority_changed(event: Any, group: TaskGroup) -> list[Draft]:
    return [
        _group_message(
            "task-group-priority-changed", group, newPriority=event.priority, tasksAffected=event.changed
        )
    ]


# clients and roles: the body names the entity, the routing key is only the
# reserved word.


def _auth(name: str, field: str, attribute: str) -> Builder:
    def build(event: Any, entity: Any) -> list[Draft]:
        body = {"version": MESSAGE_VERSION, field: getattr(entity, attribute)}
        return [(AUTH_EXCHANGES + name, "_", [], body)]

    return build


# notifications: a Pulse notification is sent by recording it; the message
# follows from its Sent event, with the routing key the request named.


def _notification_sent(event: Any, notification: Notification) -> list[Draft]:
    if notification.channel != "pulse":
        return []
    key = notification.content["routingKey"]
    body = {"version": MESSAGE_VERSION, "message": notification.content["message"]}
    return [(NOTIFY_EXCHANGE, f"primary.{key}", [f"route.{key}"], body)]


_client_updated = _auth("client-updated", "clientId", "client_id")
_role_updated = _auth("role-updated", "roleId", "role_id")

# hooks: the body names the hook, never its trigger token.


def _hook(change: str) -> Builder:
    def build(event: Any, hook: Any) -> list[Draft]:
        body = {"hookGroupId": hook.hook_group_id, "hookId": hook.hook_id}
        return [(HOOKS_EXCHANGES + f"hook-{change}", "_", [], body)]

    return build


# purge requests: on the exchange Taskcluster's purge-cache service once
# published on, keyed by the worker pool, so that its workers follow them.


def _purge_requested(event: Any, request: PurgeRequest) -> list[Draft]:
    provisioner_id, worker_type = request.worker_pool_id.split("/", 1)
    body = {
        "version": MESSAGE_VERSION,
        "provisionerId": provisioner_id,
        "workerType": worker_type,
        "cacheName": request.cache_name,
        "before": request.before,
    }
    return [(PURGE_CACHE_EXCHANGE, f"primary.{provisioner_id}.{worker_type}", [], body)]


_BUILDERS: dict[type, Builder] = {
    Task.Defined: _task_defined,
    Task.RunPending: _run_pending,
    Task.RunClaimed: _run_claimed,
    Task.RunResolved: _run_resolved,
    Task.UnscheduledResolved: _unscheduled_resolved,
    Task.PriorityChanged: _priority_changed,
    Task.ArtifactCreated: _artifact_recorded,
    Task.ArtifactReplaced: _artifact_recorded,
    Task.ArtifactFinished: _artifact_finished,
    # Task.RunReclaimed, Task.Expired, Task.ArtifactExpired: Taskcluster
    # publishes nothing.
    TaskGroup.Sealed: _group_sealed,
    TaskGroup.Resolved: _group_resolved,
    TaskGroup.PriorityChanged: _group_priority_changed,
    # TaskGroup.Defined, CancelRequested: nothing; each cancelled task
    # publishes its own task-exception.
    Client.Created: _auth("client-created", "clientId", "client_id"),
    Client.Recreated: _auth("client-created", "clientId", "client_id"),
    Client.DescriptionChanged: _client_updated,
    Client.ExpiryChanged: _client_updated,
    Client.ScopesChanged: _client_updated,
    Client.DeleteOnExpirationChanged: _client_updated,
    Client.AccessTokenReset: _client_updated,
    Client.Disabled: _client_updated,
    Client.Enabled: _client_updated,
    Client.Deleted: _auth("client-deleted", "clientId", "client_id"),
    # Client.Used: Taskcluster publishes nothing when lastDateUsed moves.
    Role.Created: _auth("role-created", "roleId", "role_id"),
    Role.Recreated: _auth("role-created", "roleId", "role_id"),
    Role.DescriptionChanged: _role_updated,
    Role.ScopesChanged: _role_updated,
    Role.Deleted: _auth("role-deleted", "roleId", "role_id"),
    Notification.Sent: _notification_sent,
    Hook.Created: _hook("created"),
    Hook.Recreated: _hook("created"),
    Hook.DefinitionChanged: _hook("updated"),
    Hook.Removed: _hook("deleted"),
    # Hook.Fired, TriggerTokenReset, ScheduleMovedOn: Taskcluster publishes nothing.
    PurgeRequest.Requested: _purge_requested,
    PurgeRequest.RequestedAgain: _purge_requested,
}
