"""Publishing Cairn's Pulse messages to RabbitMQ, at least once and in order.

The publisher follows the log from its tracked position, derives each
event's messages (the same pure function the event stream and replay use),
and publishes them on durable topic exchanges named as Taskcluster's, with
the primary routing key, the ``route.<route>`` keys in the ``CC`` header,
persistent delivery and publisher confirms. Only when a whole batch is
confirmed does the position move, so a crash re-publishes at most the
unconfirmed tail — with the same ``message_id``s, for receivers to drop
duplicates. Messages go out one at a time in log order, which keeps each
task's messages in order.

On PostgreSQL only the process holding the consumer's advisory lock
publishes; the others stand by.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

import aio_pika
import orjson
from starlette.concurrency import run_in_threadpool

from cairn.consumers.event_stream import derive
from cairn.consumers.leadership import Leadership
from cairn.consumers.log_follower import AggregateFolder, read_events, read_position
from cairn.consumers.log_signal import LogSignal
from cairn.domain.pulse_messages import PulseMessage

log = logging.getLogger("cairn.pulse")

NAME = "pulse-publisher"
BATCH = 500


class PulsePublisher:
    name = NAME

    def __init__(self, event_log: Any, signal: LogSignal, amqp_url: str, conninfo: str | None = None):
        self.log = event_log
        self.store = event_log.store
        self.signal = signal
        self.amqp_url = amqp_url
        self.conninfo = conninfo
        self.folder = AggregateFolder(event_log)
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.leadership = Leadership(conninfo, NAME)
        self._exchanges: dict[str, aio_pika.abc.AbstractExchange] = {}
        self.published = 0  # confirmed by the broker: publishing waits for each confirm
        self.failures = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="cairn-pulse-publisher")

    async def stop(self) -> None:
        self._stop.set()
        self.signal.bump()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
        self.leadership.release()

    async def run(self) -> None:
        while not self._stop.is_set():
            try:
                if not await run_in_threadpool(self.leadership.held):
                    await self._sleep(2.0)
                    continue
                connection = await aio_pika.connect_robust(self.amqp_url)
                async with connection:
                    channel = await connection.channel(publisher_confirms=True)
                    self._exchanges.clear()
                    await self._follow(channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                self.failures += 1
                log.warning("pulse publishing interrupted; resuming from the last confirmed position", exc_info=True)
                await self._sleep(1.0)

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stop.wait(), seconds)
        except asyncio.TimeoutError:
            pass

    async def _follow(self, channel: aio_pika.abc.AbstractChannel) -> None:
        while not self._stop.is_set():
            seen = self.signal.generation
            published = await self.publish_batch(channel)
            if published == 0:
                await run_in_threadpool(self.signal.wait, seen, 1.0)

    async def publish_batch(self, channel: aio_pika.abc.AbstractChannel) -> int:
        """Publish the next batch of events' messages; returns how many events it covered."""
        after = await run_in_threadpool(read_position, self.store, NAME)
        logged = await run_in_threadpool(read_events, self.log, after, BATCH)
        if not logged:
            return 0
        items = await run_in_threadpool(derive, self.folder, logged)
        for item in items:
            await self._publish(channel, item.message)
        await run_in_threadpool(self._record, logged[-1].position)
        return len(logged)

    async def publish_once(self, messages: Iterable[PulseMessage]) -> int:
        """Publish ``messages`` on their own connection, confirmed, as the follower does.

        For replays: the tracked position is neither read nor moved.
        """
        count = 0
        connection = await aio_pika.connect_robust(self.amqp_url)
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            self._exchanges.clear()
            for message in messages:
                await self._publish(channel, message)
                count += 1
        return count

    async def _publish(self, channel: aio_pika.abc.AbstractChannel, message: PulseMessage) -> None:
        exchange = self._exchanges.get(message.exchange)
        if exchange is None:
            exchange = await channel.declare_exchange(
                message.exchange, aio_pika.ExchangeType.TOPIC, durable=True
            )
            self._exchanges[message.exchange] = exchange
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

    def _record(self, position: int) -> None:
        with self.store.unit_of_work() as session:
            session.run("set_consumer_position", {"name": NAME, "position": position})
