"""The Pulse messages derived from events, as a replay of the log derives them.

Each story drives aggregates through their methods, then replays the events
they recorded one at a time — the state after each event is rebuilt with
``event.mutate`` — and derives that event's messages from it.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import taskcluster

from cairn.api.schemas import load_schemas
from cairn.domain.aggregate import acting_as
from cairn.domain.auth.model import Client, Role
from cairn.domain.notify.model import Notification
from cairn.domain.pulse_messages import (
    EXCHANGE_SCHEMAS,
    PulseMessage,
    message_id,
    messages_for,
)
from cairn.domain.queue.service import normalise_definition
from cairn.domain.queue.task import Task
from cairn.domain.queue.task_group import TaskGroup
from cairn.domain.timestamps import iso

Q = "exchange/taskcluster-queue/v1/"
A = "exchange/taskcluster-auth/v1/"
QUEUE_ID = "prov/worker"


class Replay:
    """Folds recorded events one at a time, as a reader of the log does."""

    def __init__(self) -> None:
        self.states: dict[str, Any] = {}
        self.events: list[Any] = []
        self.messages: list[PulseMessage] = []
        self.by_event: list[tuple[Any, list[PulseMessage]]] = []

    def save(self, *aggregates: Any) -> list[PulseMessage]:
        """Fold what ``aggregates`` recorded since the last save; their messages."""
        new: list[PulseMessage] = []
        for aggregate in aggregates:
            for event in aggregate.collect_events():
                state = event.mutate(self.states.get(event.originator_id))
                self.states[event.originator_id] = state
                derived = messages_for(event, state)
                self.events.append(event)
                self.by_event.append((event, derived))
                new.extend(derived)
        self.messages.extend(new)
        return new

    def of(self, task_id: str) -> list[PulseMessage]:
        return [m for m in self.messages if m.body.get("status", {}).get("taskId") == task_id]


def exchanges(messages: list[PulseMessage]) -> list[str]:
    return [m.exchange.rsplit("/", 1)[1] for m in messages]


def assert_valid(message: PulseMessage) -> None:
    errors = load_schemas().errors(message.schema, message.body)
    assert errors is None, f"{message.exchange}: {errors}\n{json.dumps(message.body, indent=1)}"
    json.dumps(message.body)  # JSON-able as it stands


def definition(now: datetime, **overrides: Any) -> dict[str, Any]:
    body = {
        "taskQueueId": QUEUE_ID,
        "created": iso(now),
        "deadline": iso(now + timedelta(hours=1)),
        "routes": ["index.project.a", "notify.email.x@example.com.on-failed"],
        "tags": {"kind": "build"},
        "payload": {},
        "metadata": {"name": "t", "description": "d", "owner": "o@example.com", "source": "https://x"},
    }
    body.update(overrides)
    return body


def new_task(now: datetime, schedule: bool = True, task_id: str | None = None, **overrides: Any) -> Task:
    task_id = task_id or taskcluster.slugId()
    task = Task(task_id=task_id, definition=normalise_definition(task_id, definition(now, **overrides), now))
    if schedule:
        task.schedule(now)
    return task


def key(task: Task, run_id: Any = "_", group: str = "_", worker: str = "_") -> str:
    d = task.definition
    where = f"prov.worker.{d['schedulerId']}.{d['taskGroupId']}"
    return f"primary.{task.task_id}.{run_id}.{group}.{worker}.{where}._"


@pytest.fixture
def now() -> datetime:
    return datetime.now(timezone.utc)


@pytest.fixture
def replay() -> Replay:
    return Replay()


@pytest.fixture(autouse=True)
def actor():
    with acting_as("tester"):
        yield


# tasks


def test_create_task_publishes_defined_unscheduled_then_pending(now, replay):
    task = new_task(now)
    defined, pending = replay.save(task)

    assert defined.exchange == Q + "task-defined"
    assert defined.routing_key == key(task)
    assert defined.cc == ["route.index.project.a", "route.notify.email.x@example.com.on-failed"]
    assert defined.body["status"]["state"] == "unscheduled"
    assert defined.body["status"]["runs"] == []
    assert defined.body["task"] == {"tags": {"kind": "build"}}
    assert "runId" not in defined.body

    assert pending.exchange == Q + "task-pending"
    assert pending.routing_key == key(task, 0)
    assert pending.cc == defined.cc
    assert pending.body["runId"] == 0
    assert pending.body["status"]["state"] == "pending"
    assert pending.body["status"]["runs"][0]["reasonCreated"] == "scheduled"
    for message in (defined, pending):
        assert message.body["version"] == 1
        assert message.body["status"]["priority"] == "lowest"
        assert_valid(message)


def test_a_diamond_runs_in_dependency_order(now, replay):
    group_id = taskcluster.slugId()
    group = TaskGroup(task_group_id=group_id, scheduler_id="sched")
    in_group = dict(taskGroupId=group_id, schedulerId="sched")
    a = new_task(now, **in_group)
    b, c = (new_task(now, False, dependencies=[a.task_id], **in_group) for _ in "bc")
    d = new_task(now, False, dependencies=[b.task_id, c.task_id], **in_group)
    replay.save(a, group)
    replay.save(b)
    replay.save(c)
    replay.save(d)

    def run(task: Task, worker: str) -> None:
        task.claim(task.runs[-1]["runId"], "group-1", worker, now, 1200)
        replay.save(task)
        task.report(task.runs[-1]["runId"], "completed", "completed", now)

    run(a, "w1")
    b.schedule(now)
    c.schedule(now)
    replay.save(a, b, c)
    run(b, "w2")
    replay.save(b)
    run(c, "w3")
    d.schedule(now)
    replay.save(c, d)
    run(d, "w4")
    group.resolve(expires=iso(now + timedelta(days=365)))
    replay.save(d, group)

    full = ["task-defined", "task-pending", "task-running", "task-completed"]
    for task in (a, b, c, d):
        assert exchanges(replay.of(task.task_id)) == full
    waiting = replay.of(d.task_id)[0]
    assert waiting.body["status"]["state"] == "unscheduled"
    assert waiting.routing_key == key(d) and ".sched." in waiting.routing_key

    for task, worker in ((a, "w1"), (d, "w4")):
        running, completed = replay.of(task.task_id)[2:]
        assert running.routing_key == key(task, 0, "group-1", worker)
        assert running.body["takenUntil"] == task.runs[0]["takenUntil"]
        assert running.body["status"]["state"] == "running"
        assert completed.routing_key == key(task, 0, "group-1", worker)
        assert (completed.body["workerGroup"], completed.body["workerId"]) == ("group-1", worker)
        assert completed.body["status"]["runs"][0]["reasonResolved"] == "completed"

    resolved = replay.messages[-1]
    assert resolved.exchange == Q + "task-group-resolved"
    assert resolved.routing_key == f"primary.{group_id}.sched._"
    assert resolved.cc == []
    assert resolved.body["taskGroupId"] == group_id and resolved.body["schedulerId"] == "sched"
    assert "sealed" not in resolved.body
    assert resolved.body["expires"] == iso(now + timedelta(days=365))
    assert_valid(resolved)
    for message in replay.messages:
        assert_valid(message)


def test_failed_run_publishes_task_failed(now, replay):
    task = new_task(now)
    task.claim(0, "g", "w", now, 1200)
    task.report(0, "failed", "failed", now)
    failed = replay.save(task)[-1]
    assert failed.exchange == Q + "task-failed"
    assert failed.routing_key == key(task, 0, "g", "w")
    assert failed.body["status"]["state"] == "failed"
    assert_valid(failed)


def test_a_retried_exception_publishes_exception_then_pending(now, replay):
    task = new_task(now, retries=1)
    task.claim(0, "g", "w1", now, 1200)
    replay.save(task)
    task.report(0, "exception", "worker-shutdown", now)
    exception, pending = replay.save(task)

    assert exception.exchange == Q + "task-exception"
    assert exception.routing_key == key(task, 0, "g", "w1")
    assert exception.body["runId"] == 0
    assert (exception.body["workerGroup"], exception.body["workerId"]) == ("g", "w1")
    # The status at the resolution, before the retry is recorded.
    assert exception.body["status"]["state"] == "exception"
    assert exception.body["status"]["retriesLeft"] == 1
    assert [r["state"] for r in exception.body["status"]["runs"]] == ["exception"]

    assert pending.exchange == Q + "task-pending"
    assert pending.routing_key == key(task, 1)
    assert pending.body["runId"] == 1
    assert pending.body["status"]["retriesLeft"] == 0
    assert pending.body["status"]["runs"][1]["reasonCreated"] == "retry"

    # Retries spent: the claim expires and the task ends with claim-expired.
    task.claim(1, "g", "w2", now, 1)
    replay.save(task)
    assert task.expire_claim(1, now + timedelta(seconds=5))
    (expired,) = replay.save(task)
    assert expired.exchange == Q + "task-exception"
    assert expired.routing_key == key(task, 1, "g", "w2")
    assert expired.body["status"]["runs"][1]["reasonResolved"] == "claim-expired"
    assert exchanges(replay.of(task.task_id)) == [
        "task-defined", "task-pending", "task-running", "task-exception", "task-pending",
        "task-running", "task-exception",
    ]
    for message in replay.messages:
        assert_valid(message)


def test_claim_expiry_with_retries_left_publishes_a_pending_retry(now, replay):
    task = new_task(now)
    task.claim(0, "g", "w", now, 1)
    replay.save(task)
    task.expire_claim(0, now + timedelta(seconds=5))
    exception, pending = replay.save(task)
    assert exception.routing_key == key(task, 0, "g", "w")
    assert pending.routing_key == key(task, 1)
    assert_valid(exception)
    assert_valid(pending)


def test_rerun_publishes_pending(now, replay):
    task = new_task(now)
    task.claim(0, "g", "w", now, 1200)
    task.report(0, "completed", "completed", now)
    replay.save(task)
    task.rerun(now)
    (pending,) = replay.save(task)
    assert pending.routing_key == key(task, 1)
    assert pending.body["status"]["runs"][1]["reasonCreated"] == "rerun"
    assert_valid(pending)


@pytest.mark.parametrize(
    "stage, run_id, workers",
    [
        ("unscheduled", 0, None),  # UnscheduledResolved makes run 0
        ("pending", 0, None),
        ("running", 0, ("g", "w")),
    ],
)
def test_cancel_publishes_exception_naming_the_worker_if_any(now, replay, stage, run_id, workers):
    task = new_task(now, schedule=stage != "unscheduled")
    if stage == "running":
        task.claim(0, "g", "w", now, 1200)
    replay.save(task)
    task.cancel(now)
    (exception,) = replay.save(task)
    assert exception.exchange == Q + "task-exception"
    assert exception.routing_key == key(task, run_id, *(workers or ("_", "_")))
    assert exception.body["runId"] == run_id
    assert ("workerId" in exception.body) == (workers is not None)
    assert exception.body["status"]["runs"][-1]["reasonResolved"] == "canceled"
    assert exception.cc == ["route.index.project.a", "route.notify.email.x@example.com.on-failed"]
    assert_valid(exception)


@pytest.mark.parametrize("claimed", [False, True])
def test_deadline_exceeded_publishes_exception_without_worker(now, replay, claimed):
    task = new_task(now, schedule=claimed)
    if claimed:
        task.claim(0, "g", "w", now, 1200)
    replay.save(task)
    assert task.exceed_deadline(now + timedelta(hours=2))
    (exception,) = replay.save(task)
    assert exception.exchange == Q + "task-exception"
    # As Taskcluster's deadline resolver: the run, but never its worker.
    assert exception.routing_key == key(task, 0)
    assert "workerGroup" not in exception.body and "workerId" not in exception.body
    assert exception.body["status"]["runs"][0]["reasonResolved"] == "deadline-exceeded"
    assert_valid(exception)


def test_reclaim_and_expiry_publish_nothing(now, replay):
    task = new_task(now)
    task.claim(0, "g", "w", now, 1200)
    replay.save(task)
    task.reclaim(0, now, 1200)
    assert replay.save(task) == []
    task.expire()
    assert replay.save(task) == []


def test_priority_change(now, replay):
    task = new_task(now, priority="low")
    replay.save(task)
    task.change_priority("high")
    (changed,) = replay.save(task)
    assert changed.exchange == Q + "task-priority-changed"
    assert changed.routing_key == key(task)
    assert changed.body["oldPriority"] == "low" and changed.body["newPriority"] == "high"
    assert changed.body["status"]["priority"] == "high"
    assert "task" not in changed.body
    assert_valid(changed)


def test_a_second_priority_change_reports_the_priority_before_it(now, replay):
    task = new_task(now, priority="low")
    task.change_priority("high")
    task.change_priority("medium")
    assert replay.save(task)[-1].body["oldPriority"] == "high"


def test_artifacts_are_announced_once_readable(now, replay):
    task = new_task(now)
    task.claim(0, "g", "w", now, 1200)
    replay.save(task)
    expires = iso(now + timedelta(days=1))

    def create(name: str, storage: str, details: dict[str, Any]) -> list[PulseMessage]:
        task.create_artifact(0, name, storage, "text/plain", expires, details, None, now)
        return replay.save(task)

    (log,) = create("public/logs/live.log", "reference", {"url": "https://example.com/live.log"})
    assert log.exchange == Q + "artifact-created"
    assert log.routing_key == key(task, 0, "g", "w")
    assert log.cc == ["route.index.project.a", "route.notify.email.x@example.com.on-failed"]
    assert log.body["artifact"] == {
        "storageType": "reference",
        "name": "public/logs/live.log",
        "expires": expires,
        "contentType": "text/plain",
    }
    assert (log.body["runId"], log.body["workerGroup"], log.body["workerId"]) == (0, "g", "w")
    assert "task" not in log.body

    assert create("public/build.tar", "object", {"uploadId": "up-1"}) == []  # not readable yet
    task.finish_artifact(0, "public/build.tar", "up-1")
    (finished,) = replay.save(task)
    assert finished.body["artifact"]["storageType"] == "object"

    assert create("private/blob", "s3", {}) == []  # never announced
    (error,) = create("public/missing", "error", {"reason": "file-missing-on-worker", "message": "gone"})
    assert error.body["artifact"]["storageType"] == "error"

    # A link may replace a reference: announced again.
    (link,) = create("public/logs/live.log", "link", {"artifact": "public/build.tar"})
    assert link.body["artifact"]["storageType"] == "link"

    task.expire_artifact(0, "public/missing", now + timedelta(days=2))
    assert replay.save(task) == []
    for message in replay.messages:
        assert_valid(message)


# task groups


def test_group_sealed_and_priority_changed(now, replay):
    group_id = taskcluster.slugId()
    group = TaskGroup(task_group_id=group_id, scheduler_id="-")
    assert replay.save(group) == []  # Taskcluster announces no group creation
    group.seal(iso(now), expires=iso(now + timedelta(days=365)))
    (sealed,) = replay.save(group)
    assert sealed.exchange == Q + "task-group-sealed"
    assert sealed.routing_key == f"primary.{group_id}.-._"
    assert sealed.cc == []
    assert sealed.body["sealed"] == iso(now)
    assert_valid(sealed)

    group.request_cancel(canceled=3)
    assert replay.save(group) == []  # each cancelled task announces itself
    group.change_priority(priority="very-high", changed=2)
    (changed,) = replay.save(group)
    assert changed.exchange == Q + "task-group-priority-changed"
    assert changed.routing_key == f"primary.{group_id}.-._"
    assert changed.body == {
        "version": 1,
        "taskGroupId": group_id,
        "schedulerId": "-",
        "newPriority": "very-high",
        "tasksAffected": 2,
    }
    assert_valid(changed)

    group.resolve(expires=iso(now + timedelta(days=365)))
    (resolved,) = replay.save(group)
    assert resolved.body["sealed"] == iso(now)
    assert resolved.body["expires"] == iso(now + timedelta(days=365))
    assert_valid(resolved)


def test_group_messages_carry_the_group_expiry(now, replay):
    group = TaskGroup(task_group_id=taskcluster.slugId(), scheduler_id="-")
    group.seal(iso(now), expires=iso(now + timedelta(days=30)))
    group.resolve(expires=iso(now + timedelta(days=60)))
    sealed, resolved = replay.save(group)
    assert (sealed.body["expires"], resolved.body["expires"]) == (
        iso(now + timedelta(days=30)), iso(now + timedelta(days=60))
    )
    for message in (sealed, resolved):
        assert_valid(message)


# clients and roles


def test_client_changes(now, replay):
    client = Client(
        client_id="project/ci", description="ci", expires=iso(now + timedelta(days=1)),
        scopes=["queue:create-task:*"], delete_on_expiration=False, sealed_token="sealed",
    )
    created = replay.save(client)
    client.update("new ci", client.expires, ["queue:*"], None)
    updated = replay.save(client)
    client.disable()
    client.enable()
    client.reset_access_token("resealed")
    toggled = replay.save(client)
    client.delete()
    deleted = replay.save(client)
    client.recreate(
        client_id="project/ci", description="again", expires=iso(now + timedelta(days=1)), scopes=[],
        delete_on_expiration=True, sealed_token="sealed-2",
    )
    recreated = replay.save(client)

    assert exchanges(created) == ["client-created"]
    # One message per recorded change: an update of two fields announces twice.
    assert exchanges(updated) == ["client-updated", "client-updated"]
    assert exchanges(toggled) == ["client-updated"] * 3
    assert exchanges(deleted) == ["client-deleted"]
    assert exchanges(recreated) == ["client-created"]
    for message in replay.messages:
        assert message.routing_key == "_"
        assert message.cc == []
        assert message.body == {"version": 1, "clientId": "project/ci"}
        assert_valid(message)


def test_role_changes(replay):
    role = Role(role_id="repo:github.com/org/*", description="repos", scopes=["secrets:get:x"])
    replay.save(role)
    role.update("all repos", ["secrets:get:*"])
    replay.save(role)
    role.delete()
    replay.save(role)
    role.recreate("back", [])
    replay.save(role)
    assert exchanges(replay.messages) == [
        "role-created", "role-updated", "role-updated", "role-deleted", "role-created"
    ]
    for message in replay.messages:
        assert message.exchange.startswith(A)
        assert message.routing_key == "_"
        assert message.body == {"version": 1, "roleId": "repo:github.com/org/*"}
        assert_valid(message)


# identity and replay


def test_message_ids_name_the_event_and_replays_agree(now):
    task = new_task(now)
    task.claim(0, "g", "w", now, 1200)
    task.report(0, "completed", "completed", now)
    events = task.collect_events()

    def derive() -> list[PulseMessage]:
        state, out = None, []
        for event in events:
            state = event.mutate(state)
            out.extend(messages_for(event, state))
        return out

    first, second = derive(), derive()
    assert first == second
    assert len({m.message_id for m in first}) == len(first)
    assert first[0].message_id == message_id(task.id, 1, 0)
    assert first[1].message_id == message_id(task.id, 2, 0)


def test_the_state_after_the_whole_save_is_refused(now):
    task = new_task(now)
    defined = task.collect_events()[0]
    with pytest.raises(ValueError, match="state right after it"):
        messages_for(defined, task)  # version 2: run 0 is already pending


def test_events_without_messages_give_none(now):
    group = TaskGroup(task_group_id=taskcluster.slugId(), scheduler_id="-")
    (defined,) = group.collect_events()
    assert messages_for(defined, None) == []


def test_every_exchange_is_declared_as_taskcluster_declares_it(reference):
    declared = json.loads((reference / "exchanges.json").read_text())
    expected = {
        e["fullExchange"]: f"/schemas/{service}/{e['schema'].rstrip('#')}"
        for service in ("queue", "auth", "notify", "hooks")
        for e in declared[service]["exchanges"]
    }
    # Taskcluster's purge-cache service no longer declares the exchange it once
    # published on; Cairn publishes each purge request there for workers to follow.
    expected["exchange/taskcluster-purge-cache/v1/purge-cache"] = "/schemas/purge-cache/v1/purge-cache-message.json"
    assert EXCHANGE_SCHEMAS == expected
    for uri in set(expected.values()):
        load_schemas().validator(uri)


def test_every_exchange_is_derived_with_its_declared_routing_key(now, reference, replay):
    declared = json.loads((reference / "exchanges.json").read_text())
    layouts = {
        e["fullExchange"]: e["routingKey"] for s in ("queue", "auth", "notify") for e in declared[s]["exchanges"]
    }
    task, done, failed, other = new_task(now, retries=0), new_task(now), new_task(now), new_task(now, False)
    group = TaskGroup(task_group_id=task.task_group_id, scheduler_id="-")
    replay.save(task, done, failed, other, group)
    task.change_priority("high")
    task.claim(0, "g", "w", now, 1200)
    error = {"reason": "file-missing-on-worker", "message": "m"}
    task.create_artifact(0, "public/x", "error", "text/plain", iso(now), error, None, now)
    task.report(0, "exception", "worker-shutdown", now)
    for t, outcome in ((done, "completed"), (failed, "failed")):
        t.claim(0, "g", "w", now, 1200)
        t.report(0, outcome, outcome, now)
    other.cancel(now)
    group.seal(iso(now), expires=iso(now + timedelta(days=365)))
    group.change_priority(priority="high", changed=1)
    group.resolve(expires=iso(now + timedelta(days=365)))
    client = Client(
        client_id="c", description="", expires=iso(now), scopes=[], delete_on_expiration=False,
        sealed_token="s",
    )
    role = Role(role_id="r", description="", scopes=[])
    replay.save(task, done, failed, other, group, client, role)
    client.disable()
    client.delete()
    role.update("changed", [])
    role.delete()
    replay.save(client, role)
    pulse = Notification(
        notification_id="n1", channel="pulse", address="project.builds", source={"clientId": "c"},
        content={"routingKey": "project.builds", "message": {"state": "failed"}},
    )
    pulse.sent()
    replay.save(pulse)

    for message in replay.messages:
        words = message.routing_key.split(".")
        layout = layouts[message.exchange]
        if layout[-1].get("multipleWords"):  # the topic of a notification: one word or more
            words = words[: len(layout) - 1] + [".".join(words[len(layout) - 1:])]
        assert len(words) == len(layout), message.routing_key
        for word, entry in zip(words, layout):
            if entry.get("constant"):
                assert word == entry["constant"]
            elif entry["required"]:
                assert word != "_", (message.exchange, entry["name"])
        assert_valid(message)
    assert {m.exchange for m in replay.messages} == set(layouts)
