"""Hook bindings on exchanges Cairn does not publish itself: consumed from RabbitMQ.

Cairn's own exchanges are matched from the log (``hook_listener.py``). For
any other exchange a hook binds to, and only when ``CAIRN_AMQP_URL`` is set,
this consumer binds one durable queue to each ``(exchange, routingKeyPattern)``
that some hook asks for — rebinding whenever the log moves, as hooks change —
and fires every hook whose binding matches a message's routing key or one of
its ``CC`` keys. A message is acknowledged once its fires are recorded, so
a crash before that has RabbitMQ deliver it again; the hook fires once for
it (its message id is remembered; a message without one is named by its
content). On PostgreSQL only the process holding the consumer's advisory
lock consumes.

The queue is durable and named after the deployment's root URL, so that a
restart finds the messages that came meanwhile and two deployments on one
broker do not share one queue. Bindings left on it by hooks that have
since changed are not known after a reconnect and stay; their messages
match no hook and are dropped. A queue left unused for a day (a deployment
gone) is deleted by the broker.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import aio_pika
import orjson
from starlette.concurrency import run_in_threadpool

from cairn.consumers.hook_listener import binding_matches
from cairn.consumers.led_loop import LedLoop
from cairn.consumers.log_signal import LogSignal
from cairn.domain.aggregate import acting_as
from cairn.domain.hooks.firing import HookFiring
from cairn.domain.hooks.model import hook_key
from cairn.domain.pulse_messages import EXCHANGE_SCHEMAS, PulseMessage
from cairn.domain.timestamps import utcnow

log = logging.getLogger("cairn.hooks.amqp")

NAME = "hook-amqp-listener"
QUEUE_PREFIX = "queue/cairn/hook-bindings/"
ACTOR = "cairn/hooks"
#: Bindings are looked at again when the log moves, and at least this often.
REBIND_EVERY = 5.0
#: A queue nobody has consumed from for this long is deleted by the broker (ms).
QUEUE_EXPIRES = 24 * 3600 * 1000


def external_bindings(rows: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """Every ``(exchange, pattern)`` of a hook on an exchange that Cairn does not publish."""
    return {
        (b["exchange"], b["routingKeyPattern"])
        for row in rows
        for b in row["definition"]["bindings"]
        if b["exchange"] not in EXCHANGE_SCHEMAS
    }


class HookAmqpListener(LedLoop):
    name = NAME
    logger = log

    def __init__(self, amqp_url: str, root_url: str, event_log: Any, reads: Any, firing: HookFiring,
                 signal: LogSignal, conninfo: str | None):
        self.amqp_url = amqp_url
        self.queue_name = QUEUE_PREFIX + hashlib.sha256(root_url.encode()).hexdigest()[:16]
        self.log = event_log
        self.reads = reads
        self.firing = firing
        super().__init__(signal, conninfo)
        self.bound: set[tuple[str, str]] = set()

    async def work(self) -> None:
        connection = await aio_pika.connect_robust(self.amqp_url)
        async with connection:
            channel = await connection.channel()
            # One message at a time: a redelivery then finds its first fire recorded.
            await channel.set_qos(prefetch_count=1)
            queue = await channel.declare_queue(self.queue_name, durable=True, arguments={"x-expires": QUEUE_EXPIRES})
            self.bound = set()
            await queue.consume(self._received)
            await self._keep_bound(channel, queue)

    async def _keep_bound(self, channel: Any, queue: Any) -> None:
        while not self._stop.is_set():
            seen = self.signal.generation
            wanted = external_bindings(await run_in_threadpool(self.reads.with_bindings))
            for exchange_name, pattern in sorted(wanted - self.bound):
                exchange = await channel.declare_exchange(exchange_name, aio_pika.ExchangeType.TOPIC, durable=True)
                await queue.bind(exchange, routing_key=pattern)
            for exchange_name, pattern in sorted(self.bound - wanted):
                await queue.unbind(exchange_name, routing_key=pattern)
            self.bound = wanted
            await run_in_threadpool(self.signal.wait, seen, REBIND_EVERY)

    async def _received(self, incoming: aio_pika.abc.AbstractIncomingMessage) -> None:
        async with incoming.process(requeue=True):
            try:
                body = orjson.loads(incoming.body)
            except orjson.JSONDecodeError:
                log.warning("a message on %s is not JSON; dropped", incoming.exchange)
                return
            if not isinstance(body, dict):
                return
            message_id = incoming.message_id or hashlib.sha256(
                b"\n".join([incoming.exchange.encode(), (incoming.routing_key or "").encode(), incoming.body])
            ).hexdigest()
            cc = [str(key) for key in (incoming.headers or {}).get("CC", []) or []]
            message = PulseMessage(incoming.exchange, incoming.routing_key or "", cc, body, message_id)
            await run_in_threadpool(self.fire_matching, message)

    def fire_matching(self, message: PulseMessage) -> int:
        """Fire every hook bound to ``message``; returns how many fired."""
        fired = 0
        now = utcnow()
        for row in self.reads.with_bindings():
            if not any(binding_matches(b, message) for b in row["definition"]["bindings"]):
                continue
            try:
                hook = self.log.get(hook_key(row["hook_group_id"], row["hook_id"]))
                if hook is None or hook.removed:
                    continue
                with acting_as(ACTOR):
                    if self.firing.fire_for_message(hook, message, now, now) is not None:
                        fired += 1
            except Exception:
                log.exception("hook %s/%s did not fire for a message on %s", row["hook_group_id"], row["hook_id"],
                              message.exchange)
        return fired
