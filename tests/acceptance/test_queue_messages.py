"""The Pulse messages a task graph's life leaves derivable in the log.

A scheduler drives a diamond through the official client; the test then
reads the runtime's event log in order, folds each aggregate one event at a
time and derives the messages, as the Pulse publisher will.
"""

from __future__ import annotations

import time
from typing import Any

import taskcluster

from cairn.api.schemas import load_schemas
from cairn.domain.pulse_messages import PulseMessage, messages_for
from tests.acceptance.queue_helpers import claim_one, task_definition

ROUTES = ["index.cairn.tests.latest", "notify.pulse.cairn-tests.on-any"]
TAGS = {"purpose": "pulse-messages"}


def log_messages(runtime: Any) -> list[tuple[str, PulseMessage]]:
    """(originator id, message) for every message the log derives, in log order."""
    log = runtime.log
    states: dict[str, Any] = {}
    derived: list[tuple[str, PulseMessage]] = []
    for notification in log.recorder.select_notifications(start=1, limit=10000):
        event = log.mapper.to_domain_event(notification)
        state = event.mutate(states.get(event.originator_id))
        states[event.originator_id] = state
        derived.extend((event.originator_id, m) for m in messages_for(event, state))
    return derived


def exchange_names(messages: list[PulseMessage]) -> list[str]:
    return [m.exchange.rsplit("/", 1)[1] for m in messages]


def schema_errors(message: PulseMessage) -> str | None:
    return load_schemas().errors(message.schema, message.body)


def complete(queue: Any, task_id: str | None = None) -> str:
    claim = claim_one(queue)
    claimed = claim["status"]["taskId"]
    if task_id is not None:
        assert claimed == task_id
    queue.reportCompleted(claimed, str(claim["runId"]))
    return claimed


def test_a_task_graph_leaves_taskclusters_messages_in_the_log(server):
    queue = server.client("queue")
    group = taskcluster.slugId()
    a, b, c, d = (taskcluster.slugId() for _ in range(4))
    common = dict(taskGroupId=group, routes=ROUTES, tags=TAGS)
    queue.createTask(a, task_definition(retries=1, **common))
    queue.createTask(b, task_definition(dependencies=[a], **common))
    queue.createTask(c, task_definition(dependencies=[a], **common))
    queue.createTask(d, task_definition(dependencies=[b, c], priority="low", **common))
    queue.sealTaskGroup(group)
    queue.changeTaskPriority(d, {"newPriority": "high"})

    # a's first worker shuts down; the retry completes.
    first = claim_one(queue, worker_id="w-a")
    assert first["status"]["taskId"] == a
    queue.reportException(a, "0", {"reason": "worker-shutdown"})
    complete(queue, a)
    assert {complete(queue), complete(queue)} == {b, c}
    complete(queue, d)

    # The notify.pulse route asks for a notification at each resolution (a's
    # exception included), recorded by the task notifier as the log goes by.
    reads = server.runtime.notify.reads
    give_up = time.monotonic() + 15
    while sum(len(reads.of_task(t)) for t in (a, b, c, d)) < 5 and time.monotonic() < give_up:
        time.sleep(0.02)
    everything = log_messages(server.runtime)
    derived = [(o, m) for o, m in everything if not o.startswith("notification/")]
    notified = [m for o, m in everything if o.startswith("notification/")]
    assert sorted((m.routing_key, m.body["message"]["taskId"], m.body["message"]["state"]) for m in notified) == sorted(
        [("primary.cairn-tests", a, "exception")]
        + [("primary.cairn-tests", t, "completed") for t in (a, b, c, d)]
    )
    by_originator: dict[str, list[PulseMessage]] = {}
    for originator, message in derived:
        by_originator.setdefault(originator, []).append(message)

    simple = ["task-defined", "task-pending", "task-running", "task-completed"]
    assert exchange_names(by_originator[f"task/{a}"]) == [
        "task-defined", "task-pending", "task-running", "task-exception", "task-pending",
        "task-running", "task-completed",
    ]
    assert exchange_names(by_originator[f"task/{b}"]) == simple
    assert exchange_names(by_originator[f"task/{c}"]) == simple
    assert exchange_names(by_originator[f"task/{d}"]) == [
        "task-defined", "task-priority-changed", "task-pending", "task-running", "task-completed"
    ]
    assert exchange_names(by_originator[f"task-group/{group}"]) == [
        "task-group-sealed", "task-group-resolved"
    ]

    # d became pending only when b and c had both completed.
    order = [(o, m.exchange.rsplit("/", 1)[1]) for o, m in derived]
    d_pending = order.index((f"task/{d}", "task-pending"))
    assert d_pending > max(order.index((f"task/{t}", "task-completed")) for t in (b, c))
    assert order[-1] == (f"task-group/{group}", "task-group-resolved")

    retried = by_originator[f"task/{a}"]
    assert retried[3].routing_key == f"primary.{a}.0.tests.w-a.cairn-test.worker.-.{group}._"
    assert retried[4].routing_key == f"primary.{a}.1._._.cairn-test.worker.-.{group}._"
    assert by_originator[f"task/{b}"][0].routing_key == f"primary.{b}._._._.cairn-test.worker.-.{group}._"
    assert by_originator[f"task/{b}"][0].body["status"]["state"] == "unscheduled"
    assert by_originator[f"task/{a}"][0].body["status"]["state"] == "unscheduled"
    priority = by_originator[f"task/{d}"][1].body
    assert (priority["oldPriority"], priority["newPriority"]) == ("low", "high")
    assert by_originator[f"task-group/{group}"][0].routing_key == f"primary.{group}.-._"
    # As Taskcluster's, the group's messages carry its expiry: its latest task's.
    latest = max(queue.task(t)["expires"] for t in (a, b, c, d))
    assert [m.body["expires"] for m in by_originator[f"task-group/{group}"]] == [latest, latest]

    for originator, message in derived:
        errors = schema_errors(message)
        assert errors is None, f"{originator} {message.exchange}: {errors}"
        if originator.startswith("task/"):
            assert message.cc == [f"route.{r}" for r in ROUTES]
            assert message.body.get("task", {"tags": TAGS}) == {"tags": TAGS}
    assert len({m.message_id for _, m in derived}) == len(derived)

    # Each task's last message carries the status the API reports now.
    for task_id in (a, b, c, d):
        last = by_originator[f"task/{task_id}"][-1].body["status"]
        now = queue.status(task_id)["status"]
        assert {k: v for k, v in last.items() if k != "priority"} == {
            k: v for k, v in now.items() if k != "priority"
        }

    # Replaying the log again derives the same messages, ids included.
    assert log_messages(server.runtime) == everything
