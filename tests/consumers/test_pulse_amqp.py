"""Pulse on a real RabbitMQ: exchanges, routing keys, bodies, and nothing lost across a crash."""

from __future__ import annotations

import time
import uuid
from collections import defaultdict

import pytest
import taskcluster

from cairn.api.schemas import load_schemas
from tests.acceptance.queue_helpers import claim_one, task_definition
from tests.integration.amqp_listener import AmqpListener

Q = "exchange/taskcluster-queue/v1/"


@pytest.fixture
def settings_overrides(amqp_url):
    return {"amqp_url": amqp_url}


def run(queue, task_id: str, task_queue_id: str, outcome: str = "completed") -> None:
    claim = claim_one(queue, task_queue_id)
    assert claim["status"]["taskId"] == task_id
    getattr(queue, "reportCompleted" if outcome == "completed" else "reportFailed")(task_id, str(claim["runId"]))


def test_a_graph_publishes_taskcluster_messages(server, amqp_url):
    queue = server.client("queue")
    group = taskcluster.slugId()
    task_queue = f"cairn-test/q{uuid.uuid4().hex[:10]}"
    a, b = taskcluster.slugId(), taskcluster.slugId()
    exchanges = ["task-defined", "task-pending", "task-running", "task-completed", "task-group-resolved"]
    with AmqpListener(amqp_url, [(Q + name, f"primary.#.{group}.#") for name in exchanges]) as listener:
        queue.createTask(a, task_definition(taskGroupId=group, taskQueueId=task_queue, routes=["index.cairn.a"]))
        queue.createTask(b, task_definition(taskGroupId=group, taskQueueId=task_queue, dependencies=[a]))
        run(queue, a, task_queue)
        run(queue, b, task_queue)
        received = listener.wait_for(9)
    by_task = defaultdict(list)
    for message in received:
        if message.exchange != Q + "task-group-resolved":
            by_task[message.body["status"]["taskId"]].append(message.exchange.removeprefix(Q))
    assert by_task[a] == ["task-defined", "task-pending", "task-running", "task-completed"]
    assert by_task[b] == ["task-defined", "task-pending", "task-running", "task-completed"]
    group_messages = [m for m in received if m.exchange == Q + "task-group-resolved"]
    assert len(group_messages) == 1 and group_messages[0].body["taskGroupId"] == group

    completed_a = next(m for m in received if m.exchange == Q + "task-completed" and m.body["status"]["taskId"] == a)
    provisioner, worker_type = task_queue.split("/")
    assert completed_a.routing_key == f"primary.{a}.0.tests.w1.{provisioner}.{worker_type}.-.{group}._"
    assert completed_a.cc == ["route.index.cairn.a"]
    schemas = load_schemas()
    for message in received:
        name = message.exchange.removeprefix(Q)
        schema = "task-group-changed-message" if name.startswith("task-group") else f"{name}-message"
        assert schemas.errors(f"/schemas/queue/v1/{schema}.json", message.body) is None
    assert len({m.message_id for m in received}) == len(received)


def test_route_bindings_receive_exactly_the_routed_tasks(server, amqp_url):
    queue = server.client("queue")
    task_queue = f"cairn-test/q{uuid.uuid4().hex[:10]}"
    namespace = f"cairn.{uuid.uuid4().hex[:8]}"
    routed, plain = taskcluster.slugId(), taskcluster.slugId()
    with AmqpListener(amqp_url, [(Q + "task-completed", f"route.index.{namespace}.#")]) as listener:
        queue.createTask(routed, task_definition(taskQueueId=task_queue, routes=[f"index.{namespace}.latest"]))
        queue.createTask(plain, task_definition(taskQueueId=task_queue))
        for _ in range(2):
            claim = claim_one(queue, task_queue)
            queue.reportCompleted(claim["status"]["taskId"], str(claim["runId"]))
        received = listener.wait_for(1)
        time.sleep(0.5)
        received = list(listener.received)
    assert [m.body["status"]["taskId"] for m in received] == [routed]
    assert received[0].routing_key.startswith(f"primary.{routed}.0.")
