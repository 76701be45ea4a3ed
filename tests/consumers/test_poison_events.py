"""A consumer never stops on one bad event: fed a poisoned one, each kind sets it aside and goes on.

The poison is a handler made to raise for one event of one task; the
tasks before and after it must be processed, the poisoned event recorded as
a dead letter (consumer, position, event, reason) after its retries, and the
consumer's position must reach the head of the log. A failure of the world
outside (a broker that cannot be reached) is not poison: nothing is set aside.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
import taskcluster

from cairn.consumers import pulse_derivation
from cairn.consumers.dead_letters import dead_letter_counts, dead_letters
from cairn.consumers.log_follower import Unavailable
from cairn.consumers.pulse_publisher import PulsePublisher
from cairn.domain.queue.task import Task
from cairn.domain.timestamps import iso, utcnow
from cairn.processes import follower
from tests.acceptance.queue_helpers import claim_one, task_definition
from tests.acceptance.test_event_stream import read_events
from tests.consumers.poisoning import FAST, eventually, run_tasks, undecodable
from tests.integration.test_projection_rebuild import cli

RUNNING = "exchange/taskcluster-queue/v1/task-running"


def poison_claims_of(task_id: str, handler: Any) -> Any:
    """``handler``, raising for the RunClaimed event of ``task_id``."""

    def poisoned(*args: Any) -> Any:
        event = next(a for a in args if hasattr(a, "originator_id"))
        if isinstance(event, Task.RunClaimed) and event.originator_id == f"task/{task_id}":
            raise ValueError(f"poisoned claim of {task_id}")
        return handler(*args)

    return poisoned


def positions_of(runtime: Any, event_class: type, task_id: str | None = None) -> list[int]:
    """The log positions of every ``event_class`` event (of ``task_id``'s task, if given)."""
    found = []
    for notification in runtime.log.recorder.select_notifications(start=1, limit=10_000):
        event = runtime.log.mapper.to_domain_event(notification)
        if isinstance(event, event_class) and task_id in (None, event.originator_id.removeprefix("task/")):
            found.append(notification.id)
    return found


def the_dead_letter(runtime: Any, consumer: str, task_id: str) -> Any:
    (letter,) = dead_letters(runtime.store, consumer)
    assert (letter.event_type, letter.originator_id) == ("Task.RunClaimed", f"task/{task_id}")
    assert [letter.position] == positions_of(runtime, Task.RunClaimed, task_id)
    assert letter.attempts == FAST.attempts
    assert letter.reason == f"ValueError: poisoned claim of {task_id}"
    return letter


def test_a_view_sets_the_event_aside_and_folds_the_rest(runtime, monkeypatch):
    before, bad, after = run_tasks(runtime, 3)
    analytics = runtime.runs_analytics
    monkeypatch.setitem(analytics.handlers, Task.RunClaimed, poison_claims_of(bad, analytics.handlers[Task.RunClaimed]))
    (view,) = runtime.view_followers
    view.retry = FAST

    view.catch_up()

    assert view.position() == runtime.log.recorder.max_notification_id()
    the_dead_letter(runtime, "runs", bad)
    with runtime.store.reading() as session:
        rows = {r["task_id"]: r for r in session.rows("runs_page", {"after_task_id": "", "after_run_id": -1, "limit": 100})}
    assert [(rows[t]["state"], rows[t]["worker_id"]) for t in (before, bad, after)] == [
        ("completed", "w1"), ("completed", None), ("completed", "w1")  # the claim of `bad` was set aside
    ]
    assert dead_letter_counts(runtime.store) == {"runs": 1}

    listed = cli(runtime, "projections", "list")
    assert listed.exit_code == 0, listed.output
    assert "events set aside by consumers: 1" in listed.output


def test_an_event_that_cannot_be_decoded_is_set_aside_at_once(runtime, monkeypatch):
    before, bad, after = run_tasks(runtime, 3)
    (claimed,) = positions_of(runtime, Task.RunClaimed, bad)
    undecodable(runtime, monkeypatch, claimed)
    (view,) = runtime.view_followers
    view.catch_up()

    (letter,) = dead_letters(runtime.store, "runs")
    assert (letter.position, letter.originator_id, letter.attempts) == (claimed, f"task/{bad}", 1)
    assert letter.event_type.endswith("RunClaimed") and letter.reason.startswith("KeyError")
    assert view.position() == runtime.log.recorder.max_notification_id()
    with runtime.store.reading() as session:
        rows = {r["task_id"]: r for r in session.rows("runs_page", {"after_task_id": "", "after_run_id": -1, "limit": 100})}
    assert [rows[t]["worker_id"] for t in (before, bad, after)] == ["w1", None, "w1"]


def test_the_indexer_sets_the_event_aside_and_indexes_the_rest(runtime, monkeypatch):
    indexer = runtime.task_indexer
    indexer.retry = FAST
    consumer = indexer.consumer
    tasks = run_tasks(runtime, 3, routes=["index.poison.latest"])
    before, bad, after = tasks
    original = consumer.index_completion

    def index_completion(task_key: str, position: int) -> None:
        if task_key == f"task/{bad}":
            raise ValueError(f"poisoned claim of {bad}")
        original(task_key, position)

    monkeypatch.setattr(consumer, "index_completion", index_completion)
    indexed: list[str] = []
    monkeypatch.setattr(
        runtime.index, "insert", lambda ns, task_id, *a, **k: indexed.append(task_id) or type(runtime.index).insert(runtime.index, ns, task_id, *a, **k)
    )

    indexer.catch_up()

    # At least once: the batch that failed is handed over again event by event.
    assert set(indexed) == {before, after} and indexed[-1] == after
    assert runtime.index_reads.entry("poison.latest", iso(utcnow()))["taskId"] == after
    # Past every completion (the IndexedTask events after them are not its topic).
    assert indexer.position() >= max(positions_of(runtime, Task.RunResolved))
    (letter,) = dead_letters(runtime.store, "task-indexer")
    assert (letter.event_type, letter.originator_id) == ("Task.RunResolved", f"task/{bad}")
    assert [letter.position] == positions_of(runtime, Task.RunResolved, bad)
    assert letter.reason == f"ValueError: poisoned claim of {bad}"


def poison_derivation(monkeypatch, bad: str) -> None:
    """Pulse messages of ``bad``'s claim cannot be derived, in this process."""
    monkeypatch.setattr(pulse_derivation, "messages_for", poison_claims_of(bad, pulse_derivation.messages_for))


def test_the_event_stream_sets_the_event_aside_and_streams_the_rest(server, monkeypatch):
    runtime = server.runtime
    runtime.event_stream.follower.retry = FAST
    start = runtime.log.recorder.max_notification_id() or 0
    started = threading.Event()
    found: dict[str, Any] = {}
    reader = threading.Thread(
        target=lambda: found.setdefault("live", read_events(server, 2, f"?exchange={RUNNING}", started=started))
    )
    reader.start()
    assert started.wait(10)
    eventually(lambda: runtime.event_stream.subscribers == 1, what="the subscription")
    # The poison names its task before the task exists: the ids are picked first.
    before, bad, after = ids = [taskcluster.slugId() for _ in range(3)]
    poison_derivation(monkeypatch, bad)
    queue = server.client("queue")
    for task_id in ids:
        queue.createTask(task_id, task_definition(taskQueueId="cairn-test/poison"))
        claim = claim_one(queue, "cairn-test/poison")
        queue.reportCompleted(claim["status"]["taskId"], str(claim["runId"]))
    reader.join(30)
    assert [e["data"]["payload"]["status"]["taskId"] for e in found["live"]] == [before, after]
    eventually(lambda: dead_letters(runtime.store, "event-stream"), what="the dead letter")
    the_dead_letter(runtime, "event-stream", bad)

    # Read again from before them, from the log: the history leaves it out too.
    again = read_events(server, 2, f"?exchange={RUNNING}&from={start}")
    assert [e["data"]["payload"]["status"]["taskId"] for e in again] == [before, after]


def test_the_publisher_retries_an_unreachable_broker_without_setting_anything_aside(runtime):
    publisher = follower(runtime, None, PulsePublisher(runtime.pulse_messages, "amqp://guest:guest@127.0.0.1:9/"))
    publisher.retry = FAST
    run_tasks(runtime, 1)
    with pytest.raises(Unavailable):
        publisher.step()
    assert publisher.position() == 0
    assert dead_letters(runtime.store) == []
    publisher.stop()


class TestPublisher:
    @pytest.fixture
    def settings_overrides(self, amqp_url):
        return {"amqp_url": amqp_url}

    def test_the_publisher_sets_the_event_aside_and_publishes_the_rest(self, runtime, amqp_url, monkeypatch):
        from tests.integration.amqp_listener import AmqpListener

        publisher = runtime.processes["pulse-publisher"]
        publisher.retry = FAST
        ids = run_tasks(runtime, 3)
        before, bad, after = ids
        poison_derivation(monkeypatch, bad)
        with AmqpListener(amqp_url, [(RUNNING, f"primary.{task_id}.#") for task_id in ids]) as listener:
            publisher.catch_up()
            received = listener.wait_for(2)
        assert [m.body["status"]["taskId"] for m in received] == [before, after]
        assert publisher.position() == runtime.log.recorder.max_notification_id()
        the_dead_letter(runtime, "pulse-publisher", bad)
        publisher.stop()
