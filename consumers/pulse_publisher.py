"""Publishing Cairn's Pulse messages to RabbitMQ, at least once and in order.

An at-least-once consumer on the log-follower engine: for each batch it
takes the events' messages from :class:`DerivedMessages` (derived once per
process, shared with the event stream) and publishes them on durable topic
exchanges named as Taskcluster's, with the primary routing key, the
``route.<route>`` keys in the ``CC`` header, persistent delivery and
publisher confirms. Only when a whole batch is confirmed does the engine
move the position, so a crash re-publishes at most the unconfirmed tail —
with the same ``message_id``s, for receivers to drop duplicates. Messages go
out one at a time in log order, which keeps each task's messages in order.

The engine's thread drives aio-pika on an event loop of its own. A broker
that cannot be reached is :class:`Unavailable` — the engine retries from the
last confirmed position and never sets an event aside for it; an event
whose messages cannot be derived is set aside like any consumer's.

On PostgreSQL only the process leading ``pulse-publisher`` publishes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

import aio_pika
import orjson

from cairn.consumers.log_follower import Guarantee, LoggedEvent, Unavailable
from cairn.consumers.pulse_derivation import DerivedMessages
from cairn.domain.pulse_messages import PulseMessage

log = logging.getLogger("cairn.pulse")

NAME = "pulse-publisher"
BATCH = 500
CONNECT_TIMEOUT = 10.0


class PulsePublisher:
    name = NAME
    guarantee: Guarantee = "at-least-once"
    topics: tuple[str, ...] = ()

    def __init__(self, derived: DerivedMessages, amqp_url: str):
        self.derived = derived
        self.amqp_url = amqp_url
        self.published = 0  # confirmed by the broker: publishing waits for each confirm
        self.failures = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connection: aio_pika.abc.AbstractConnection | None = None
        self._channel: aio_pika.abc.AbstractChannel | None = None
        self._exchanges: dict[str, aio_pika.abc.AbstractExchange] = {}

    def handle(self, session: Any, batch: list[LoggedEvent]) -> None:
        items = self.derived.of(batch)
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        try:
            self._loop.run_until_complete(self._publish_all(item.message for item in items))
        except Exception as e:
            self.failures += 1
            self._loop.run_until_complete(self._disconnect())
            raise Unavailable(f"publishing to {NAME}'s broker failed: {e!r}") from e

    def close(self) -> None:
        if self._loop is not None:
            self._loop.run_until_complete(self._disconnect())
            self._loop.close()
            self._loop = None

    async def _publish_all(self, messages: Iterable[PulseMessage]) -> None:
        if self._channel is None:
            # Not a robust connection: the engine is the one that reconnects.
            self._connection = await aio_pika.connect(self.amqp_url, timeout=CONNECT_TIMEOUT)
            self._channel = await self._connection.channel(publisher_confirms=True)
            self._exchanges = {}
        for message in messages:
            await self._publish(self._channel, self._exchanges, message)

    async def _disconnect(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None:
            try:
                await connection.close()
            except Exception:
                log.debug("closing the AMQP connection failed", exc_info=True)

    async def publish_once(self, messages: Iterable[PulseMessage]) -> int:
        """Publish ``messages`` on their own connection, confirmed, as the follower does.

        For replays: the tracked position is neither read nor moved.
        """
        count = 0
        connection = await aio_pika.connect_robust(self.amqp_url)
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            exchanges: dict[str, aio_pika.abc.AbstractExchange] = {}
            for message in messages:
                await self._publish(channel, exchanges, message)
                count += 1
        return count

    async def _publish(
        self,
        channel: aio_pika.abc.AbstractChannel,
        exchanges: dict[str, aio_pika.abc.AbstractExchange],
        message: PulseMessage,
    ) -> None:
        exchange = exchanges.get(message.exchange)
        if exchange is None:
            exchange = await channel.declare_exchange(message.exchange, aio_pika.ExchangeType.TOPIC, durable=True)
            exchanges[message.exchange] = exchange
        headers = {"CC": message.cc} if message.cc else {}
        await exchange.publish(
            aio_pika.Message(
                orjson.dumps(message.body),
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                message_id=message.message_id,
                headers=headers,
            ),
            routing_key=message.routing_key,
        )
        self.published += 1
