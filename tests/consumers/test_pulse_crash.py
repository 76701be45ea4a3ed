"""The publisher killed mid-stream and restarted: every message arrives, in order per task."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import defaultdict

import taskcluster

from cairn.consumers.event_stream import derive
from cairn.consumers.log_follower import AggregateFolder, read_events
from cairn.domain.aggregate import acting_as
from cairn.domain.timestamps import utcnow
from tests.acceptance.queue_helpers import task_definition
from tests.conftest import SECRET_KEY
from tests.integration.amqp_listener import AmqpListener

Q = "exchange/taskcluster-queue/v1/"
TASKS = 400


def fill_the_log(runtime, group: str) -> None:
    """Whole task lifecycles, recorded through the queue service (no HTTP needed)."""
    queue = runtime.queue
    task_queue = "cairn-test/crash"
    with acting_as("tests"):
        for _ in range(TASKS):
            task_id = taskcluster.slugId()
            queue.define_task(task_id, task_definition(taskGroupId=group, taskQueueId=task_queue), utcnow())
            (claim,) = queue.claim_work(task_queue, "g", "w", 1, utcnow())
            queue.report(task_id, claim.run_id, "completed", "completed", utcnow())


def expected_messages(runtime, group: str) -> list:
    logged = read_events(runtime.log, 0, 1_000_000)
    items = derive(AggregateFolder(runtime.log), logged)
    return [i.message for i in items if group in i.message.routing_key]


def start_publisher(runtime, amqp_url: str) -> subprocess.Popen:
    env = dict(os.environ)
    env.update(
        CAIRN_DATABASE_URL=runtime.settings.database_url,
        CAIRN_SECRET_KEY=SECRET_KEY,
        CAIRN_AMQP_URL=amqp_url,
        CAIRN_DATA_DIR=runtime.settings.data_dir,
        CAIRN_LOG_LEVEL="warning",
    )
    return subprocess.Popen([sys.executable, "-m", "cairn.cli", "pulse-publisher"], env=env)


def test_a_killed_publisher_loses_nothing_and_keeps_each_tasks_order(runtime, amqp_url):
    group = taskcluster.slugId()
    fill_the_log(runtime, group)
    expected = expected_messages(runtime, group)
    assert len(expected) == TASKS * 5 - 1 + 1  # defined, pending, running, completed per task; group resolved

    exchanges = {m.exchange for m in expected}
    with AmqpListener(amqp_url, [(e, f"primary.#.{group}.#") for e in exchanges]) as listener:
        publisher = start_publisher(runtime, amqp_url)
        try:
            give_up = time.monotonic() + 60
            while len(listener.received) < len(expected) // 4 and time.monotonic() < give_up:
                time.sleep(0.01)
            publisher.send_signal(signal.SIGKILL)
            publisher.wait(10)
            at_kill = len(listener.received)
            assert 0 < at_kill < len(expected), f"the kill came too late to test anything ({at_kill})"
            publisher = start_publisher(runtime, amqp_url)
            ids = {m.message_id for m in expected}
            give_up = time.monotonic() + 90
            while not ids <= {m.message_id for m in listener.received} and time.monotonic() < give_up:
                time.sleep(0.05)
        finally:
            publisher.send_signal(signal.SIGTERM)
            publisher.wait(20)
        received = list(listener.received)

    assert {m.message_id for m in received} == {m.message_id for m in expected}
    # Receivers drop duplicates by message id; what remains is in log order for every task.
    first_seen: dict[str, int] = {}
    for index, message in enumerate(received):
        first_seen.setdefault(message.message_id, index)
    order = defaultdict(list)
    for message in sorted(expected, key=lambda m: first_seen[m.message_id]):
        order[message.routing_key.split(".")[1]].append(message.message_id)
    wanted = defaultdict(list)
    for message in expected:
        wanted[message.routing_key.split(".")[1]].append(message.message_id)
    assert order == wanted
