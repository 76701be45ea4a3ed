"""A binding on an exchange Cairn does not publish fires from RabbitMQ (CAIRN_AMQP_URL set)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aio_pika
import orjson
import pytest

from tests.acceptance.hooks_helpers import QUEUE_SCOPES, hook_definition, hook_task, role_for_hook
from tests.acceptance.test_hooks import fires

EXCHANGE = "exchange/example-ci/v1/build-finished"


@pytest.fixture
def settings_overrides(amqp_url: str) -> dict[str, Any]:
    return {"amqp_url": amqp_url}


def publish(amqp_url: str, routing_key: str, body: dict[str, Any], message_id: str) -> None:
    async def send() -> None:
        connection = await aio_pika.connect_robust(amqp_url)
        async with connection:
            channel = await connection.channel()
            exchange = await channel.declare_exchange(EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
            await exchange.publish(aio_pika.Message(orjson.dumps(body), message_id=message_id), routing_key=routing_key)

    asyncio.run(send())


def test_a_binding_on_another_exchange_fires_for_matching_messages_once(server, amqp_url):
    hooks = server.client("hooks")
    role_for_hook(server, "ext", "on-build", QUEUE_SCOPES)
    binding = {"exchange": EXCHANGE, "routingKeyPattern": "builds.*.linux"}
    template = hook_task(payload={"command": ["echo", "${payload.revision}"], "env": {"KEY": "${routingKey}"}})
    hooks.createHook("ext", "on-build", hook_definition(task=template, bindings=[binding],
                                                        triggerSchema={"type": "object"}))
    listener = server.runtime.hooks_and_secrets.amqp_listener
    give_up = time.monotonic() + 20
    while (EXCHANGE, "builds.*.linux") not in listener.bound and time.monotonic() < give_up:
        time.sleep(0.05)
    assert (EXCHANGE, "builds.*.linux") in listener.bound

    publish(amqp_url, "builds.main.mac", {"revision": "not-me"}, "m-0")
    publish(amqp_url, "builds.main.linux", {"revision": "abc123"}, "m-1")
    publish(amqp_url, "builds.main.linux", {"revision": "abc123"}, "m-1")  # delivered again
    give_up = time.monotonic() + 20
    while not fires(hooks, "ext", "on-build") and time.monotonic() < give_up:
        time.sleep(0.1)
    time.sleep(1.0)
    [fire] = fires(hooks, "ext", "on-build")
    assert fire["firedBy"] == "pulseMessage" and fire["result"] == "success"
    task = server.client("queue").task(fire["taskId"])
    assert task["payload"]["command"] == ["echo", "abc123"]
    assert task["payload"]["env"] == {"KEY": "builds.main.linux"}
