"""notify.pulse on a real RabbitMQ and on the event stream: the message derived from the notification's event."""

from __future__ import annotations

import threading

import pytest
import taskcluster

from cairn.api.schemas import load_schemas
from tests.acceptance.queue_helpers import claim_one, task_definition
from tests.acceptance.test_event_stream import read_events
from tests.integration.amqp_listener import AmqpListener

NOTIFICATION = "exchange/taskcluster-notify/v1/notification"


@pytest.fixture
def settings_overrides(amqp_url):
    return {"amqp_url": amqp_url}


def test_notify_pulse_reaches_rabbitmq_and_the_event_stream(server, amqp_url):
    topic = f"cairn-test.{taskcluster.slugId().replace('-', 'x').replace('_', 'y')}"
    notify, queue = server.client("notify"), server.client("queue")
    streamed: list = []
    started = threading.Event()
    reader = threading.Thread(target=lambda: streamed.extend(
        read_events(server, 2, f"?exchange={NOTIFICATION}", started=started)), daemon=True)
    reader.start()
    assert started.wait(10)
    with AmqpListener(amqp_url, [(NOTIFICATION, f"primary.{topic}.#")]) as listener:
        notify.pulse({"routingKey": f"{topic}.api", "message": {"hello": "pulse"}})
        task_id = taskcluster.slugId()
        queue.createTask(task_id, task_definition(routes=[f"notify.pulse.{topic}.task.on-completed"]))
        claim = claim_one(queue)
        queue.reportCompleted(task_id, str(claim["runId"]))
        received = listener.wait_for(2)
    reader.join(20)

    by_key = {m.routing_key: m for m in received}
    assert set(by_key) == {f"primary.{topic}.api", f"primary.{topic}.task"}
    api = by_key[f"primary.{topic}.api"]
    assert api.exchange == NOTIFICATION and api.body == {"version": 1, "message": {"hello": "pulse"}}
    assert api.cc == [f"route.{topic}.api"]
    task = by_key[f"primary.{topic}.task"].body["message"]
    assert task["taskId"] == task_id and task["state"] == "completed"
    for message in received:
        assert load_schemas().errors("/schemas/notify/v1/notification-message.json", message.body) is None

    assert len(streamed) == 2
    assert {e["data"]["routingKey"] for e in streamed} == set(by_key)
    assert {e["data"]["exchange"] for e in streamed} == {NOTIFICATION}


def test_a_denylisted_routing_key_publishes_nothing(server):
    notify = server.client("notify")
    notify.addDenylistAddress({"notificationType": "pulse", "notificationAddress": "quiet.key"})
    with pytest.raises(taskcluster.TaskclusterRestFailure) as refused:
        notify.pulse({"routingKey": "quiet.key", "message": {}})
    assert refused.value.body["code"] == "DenylistedAddress"
