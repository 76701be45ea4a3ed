"""Pulse messages are derived once per process, for the event stream and the publisher alike."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from cairn.consumers import pulse_derivation as module
from cairn.consumers.log_follower import AggregateFolder, read_events
from cairn.consumers.pulse_derivation import DerivedMessages, derive
from cairn.domain.queue.task import Task
from tests.acceptance.test_event_stream import read_events as read_stream
from tests.consumers.poisoning import eventually, run_tasks
from tests.integration.amqp_listener import AmqpListener

Q = "exchange/taskcluster-queue/v1/"


def test_each_position_is_derived_once_whoever_asks(runtime):
    run_tasks(runtime, 3)
    logged = read_events(runtime.log, 0, 1000)
    derived = DerivedMessages(runtime.log)
    first = derived.of(logged[:5])
    assert derived.of(logged) == first + derived.of(logged[5:])
    assert (derived.derived, derived.reused) == (len(logged), 5 + len(logged) - 5)
    # The same items as a fold of the whole log from scratch.
    assert derived.of(logged) == derive(AggregateFolder(runtime.log), logged)


def test_a_position_not_derived_raises_and_is_not_kept(runtime, monkeypatch):
    run_tasks(runtime, 1)
    logged = read_events(runtime.log, 0, 1000)
    derived = DerivedMessages(runtime.log)
    messages_for = module.messages_for
    monkeypatch.setattr(module, "messages_for", lambda e, a: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        derived.of(logged)
    monkeypatch.setattr(module, "messages_for", messages_for)
    assert derived.of(logged) == derive(AggregateFolder(runtime.log), logged)


def positions_up_to_last_claim(runtime: Any, after: int) -> int:
    logged = read_events(runtime.log, after, 1000)
    claims = [i for i, entry in enumerate(logged) if isinstance(entry.event, Task.RunClaimed)]
    return claims[-1] + 1


def ours(received: list[Any], task_ids: list[str]) -> list[Any]:
    return [m for m in received if m.body["status"]["taskId"] in task_ids]


class TestOneProcess:
    @pytest.fixture
    def settings_overrides(self, amqp_url):
        return {"amqp_url": amqp_url}

    def test_the_stream_and_the_publisher_share_one_derivation(self, server, amqp_url):
        runtime = server.runtime
        started = threading.Event()
        found: dict[str, Any] = {}
        running = Q + "task-running"
        reader = threading.Thread(
            target=lambda: found.setdefault("sse", read_stream(server, 3, f"?exchange={running}", started=started))
        )
        reader.start()
        assert started.wait(10)
        eventually(lambda: runtime.event_stream.subscribers == 1, what="the subscription")
        start = runtime.log.recorder.max_notification_id() or 0
        with AmqpListener(amqp_url, [(running, "#")]) as listener:
            tasks = run_tasks(runtime, 3)
            # The broker is shared with tests running at the same time, whose
            # tasks run too: only this test's tasks' messages are counted.
            eventually(lambda: len(ours(listener.received, tasks)) >= 3, seconds=20, what="the three messages")
            received = ours(listener.received, tasks)
        reader.join(20)
        assert [m.body["status"]["taskId"] for m in received] == tasks
        assert [e["data"]["payload"]["status"]["taskId"] for e in found["sse"]] == tasks
        head = runtime.log.recorder.max_notification_id()
        eventually(lambda: runtime.processes["pulse-publisher"].position() == head, what="the publisher")
        # Every position was derived once, though both readers took the tasks' (up to the
        # last claim, at least: the subscriber left after it, and the stream stopped reading).
        counts = runtime.pulse_messages
        assert counts.derived == head
        assert counts.reused >= positions_up_to_last_claim(runtime, start)
