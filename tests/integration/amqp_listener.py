"""A real AMQP consumer for tests: binds a fresh queue and collects what arrives."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass
from typing import Any

import aio_pika
import orjson


@dataclass
class Received:
    exchange: str
    routing_key: str
    body: dict[str, Any]
    message_id: str
    cc: list[str]


class AmqpListener:
    """Binds ``(exchange, pattern)`` pairs to one exclusive queue, in a thread of its own."""

    def __init__(self, url: str, bindings: list[tuple[str, str]]):
        self.url = url
        self.bindings = bindings
        self.received: list[Received] = []
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def __enter__(self) -> AmqpListener:
        self._thread.start()
        assert self._ready.wait(15), "AMQP listener did not start"
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(10)

    async def _run(self) -> None:
        connection = await aio_pika.connect_robust(self.url)
        async with connection:
            channel = await connection.channel()
            queue = await channel.declare_queue(exclusive=True, auto_delete=True)
            for exchange_name, pattern in self.bindings:
                exchange = await channel.declare_exchange(exchange_name, aio_pika.ExchangeType.TOPIC, durable=True)
                await queue.bind(exchange, routing_key=pattern)

            async def collect(message: aio_pika.abc.AbstractIncomingMessage) -> None:
                async with message.process():
                    self.received.append(
                        Received(
                            exchange=message.exchange,
                            routing_key=message.routing_key,
                            body=orjson.loads(message.body),
                            message_id=message.message_id,
                            cc=list((message.headers or {}).get("CC", [])),
                        )
                    )

            await queue.consume(collect)
            self._ready.set()
            while not self._stop.is_set():
                await asyncio.sleep(0.05)

    def wait_for(self, count: int, timeout: float = 20.0) -> list[Received]:
        give_up = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < give_up:
            time.sleep(0.05)
        return list(self.received)
