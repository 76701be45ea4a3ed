"""Delivering requested notifications: at least once, and recorded, so never twice on a restart.

The to-do list is the ``notify_notifications`` view: every notification
recorded as requested is due at once, and after a failed attempt again at
the time that attempt recorded. For each due notification the delivery
loads the aggregate and acts only if it has not ended — the recorded
outcome is checked before anything is sent — and its address is not
denylisted (the denylist may have grown since the request); then it sends
it and records ``Sent``, ``AttemptFailed`` (retried after a backoff that
doubles up to a ceiling) or ``Failed`` (refused for good, or out of
attempts). A crash between a channel taking a message and ``Sent`` being
recorded is the one window in which a message can go twice; e-mails carry
the notification id as their Message-ID and Matrix sends reuse it as their
transaction id, so receivers can tell.

On PostgreSQL only the process holding the delivery's advisory lock
delivers (:class:`Leadership`), so two processes never race for one
notification. A commit anywhere in the process (or, on PostgreSQL, in any
process) wakes the loop; without one it looks again within a second, and
when the next retry is due.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from starlette.concurrency import run_in_threadpool

from cairn.consumers.led_loop import DueLoop
from cairn.consumers.log_signal import LogSignal
from cairn.consumers.notify.delivery_failure import DeliveryFailed
from cairn.domain.aggregate import acting_as
from cairn.domain.notify.service import DENYLISTED, NotifyService
from cairn.domain.timestamps import iso, utcnow

log = logging.getLogger("cairn.notify")

NAME = "notification-delivery"
ACTOR = "cairn/notify"


class Sender(Protocol):
    async def send(self, notification_id: str, content: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class Backoff:
    """Seconds before attempt ``n + 1`` after ``n`` failed ones; after ``attempts`` failures, give up."""

    first: float = 1.0
    ceiling: float = 300.0
    attempts: int = 30  # about two hours of a server down, at the ceiling

    def delay(self, failed: int) -> float:
        return min(self.ceiling, self.first * 2 ** max(0, failed - 1))


class NotificationDelivery(DueLoop):
    name = NAME
    logger = log

    def __init__(
        self,
        service: NotifyService,
        reads: Any,
        senders: dict[str, Sender],
        signal: LogSignal,
        conninfo: str | None = None,
        *,
        backoff: Backoff = Backoff(),
        batch: int = 50,
        concurrency: int = 8,
        idle_wait: float = 1.0,
        coalesce: float = 0.02,
    ):
        self.service = service
        self.reads = reads
        self.senders = senders
        self.backoff = backoff
        super().__init__(signal, conninfo, batch=batch, idle_wait=idle_wait, coalesce=coalesce)
        self._slots = asyncio.Semaphore(concurrency)

    def next_due(self) -> str | None:
        return self.reads.next_due()

    async def deliver_due(self) -> int:
        """Deliver one batch of due notifications; returns how many were due."""
        due = await run_in_threadpool(self.reads.due, iso(utcnow()), self.batch)
        await asyncio.gather(*(self._deliver_in_slot(notification_id) for notification_id in due))
        return len(due)

    async def _deliver_in_slot(self, notification_id: str) -> None:
        async with self._slots:
            try:
                await self.deliver(notification_id)
            except Exception:
                log.exception("delivering notification %s failed; it stays due", notification_id)

    async def deliver(self, notification_id: str) -> str:
        """Send one notification unless it has ended; returns its state afterwards."""
        notification = await run_in_threadpool(self.service.notification, notification_id)
        if notification is None or notification.final:
            return notification.state if notification else "missing"
        if await run_in_threadpool(self.service.denied, notification.channel, notification.address):
            await self._record(self.service.record_skipped, notification_id, DENYLISTED)
            return "skipped"
        sender = self.senders.get(notification.channel)
        if sender is None:
            await self._record(self.service.record_skipped, notification_id, f"{notification.channel} is not configured")
            return "skipped"
        try:
            await sender.send(notification_id, notification.content)
        except DeliveryFailed as e:
            return await self._failed(notification, e.message, e.permanent)
        except Exception as e:  # a sender's bug must not lose the notification
            log.exception("sending notification %s raised", notification_id)
            return await self._failed(notification, f"unexpected error: {e!r}", False)
        await self._record(self.service.record_sent, notification_id)
        return "sent"

    async def _failed(self, notification: Any, error: str, permanent: bool) -> str:
        failed = notification.attempts + 1
        if permanent or failed >= self.backoff.attempts:
            log.warning("notification %s failed for good: %s", notification.notification_id, error)
            await self._record(self.service.record_failed, notification.notification_id, error)
            return "failed"
        retry_at = iso(utcnow() + timedelta(seconds=self.backoff.delay(failed)))
        await self._record(self.service.record_attempt_failed, notification.notification_id, error, retry_at)
        return "requested"

    async def _record(self, command: Any, *args: Any) -> None:
        def record() -> None:
            with acting_as(ACTOR):
                command(*args)

        await run_in_threadpool(record)
