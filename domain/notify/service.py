"""The notify service's commands: ask for a notification, record how it went, keep the denylist.

Asking records the notification before anything is sent; a consumer sends
it and records the outcome. Every command is idempotent: asking again for
a notification id already recorded returns what was recorded, and an
outcome reported for a notification that has already ended changes nothing
(so two deliveries racing, or one replayed, cannot both count).
"""

from __future__ import annotations

from typing import Any

from cairn.domain.event_log import EventLog
from cairn.domain.notify.model import DenylistEntry, Notification, denylist_key, notification_key

DENYLISTED = "denylisted"


class NotifyService:
    def __init__(self, log: EventLog):
        self.log = log

    # the denylist

    def denied(self, notification_type: str, address: str) -> bool:
        entry = self.log.get(denylist_key(notification_type, address))
        return entry is not None and entry.listed

    def deny(self, notification_type: str, address: str) -> None:
        """addDenylistAddress: the address receives nothing from now on; harmless to repeat."""

        def deny() -> None:
            entry = self.log.get(denylist_key(notification_type, address))
            if entry is None:
                self.log.save(DenylistEntry(notification_type=notification_type, address=address))
            elif entry.relist():
                self.log.save(entry)

        self.log.command(deny)

    def allow(self, notification_type: str, address: str) -> bool:
        """deleteDenylistAddress: False if the address was not denylisted (not an error)."""

        def allow() -> bool:
            entry = self.log.get(denylist_key(notification_type, address))
            if entry is None or not entry.unlist():
                return False
            self.log.save(entry)
            return True

        return self.log.command(allow)

    # notifications

    def notification(self, notification_id: str) -> Notification | None:
        return self.log.get(notification_key(notification_id))

    def request(
        self,
        notification_id: str,
        channel: str,
        address: str,
        content: dict[str, Any],
        source: dict[str, Any],
        skip_reason: str | None = None,
    ) -> Notification:
        """Record a notification to send; the one already recorded under this id, if any.

        A denylisted address, or a ``skip_reason`` (an unconfigured channel),
        ends it at once as skipped. A Pulse notification is sent by being
        recorded: its message is derived from the ``Sent`` event, as every
        Pulse message is derived from an event.
        """

        def request() -> Notification:
            existing = self.notification(notification_id)
            if existing is not None:
                return existing
            notification = Notification(
                notification_id=notification_id, channel=channel, address=address, content=content, source=source
            )
            if self.denied(channel, address):
                notification.skip(DENYLISTED)
            elif skip_reason:
                notification.skip(skip_reason)
            elif channel == "pulse":
                notification.sent()
            self.log.save(notification)
            return notification

        return self.log.command(request)

    def record_sent(self, notification_id: str) -> bool:
        return self._outcome(notification_id, lambda n: n.sent())

    def record_attempt_failed(self, notification_id: str, error: str, retry_at: str) -> bool:
        return self._outcome(notification_id, lambda n: n.attempt_failed(error, retry_at))

    def record_failed(self, notification_id: str, error: str) -> bool:
        return self._outcome(notification_id, lambda n: n.failed(error))

    def record_skipped(self, notification_id: str, reason: str) -> bool:
        return self._outcome(notification_id, lambda n: n.skip(reason))

    def _outcome(self, notification_id: str, change: Any) -> bool:
        def record() -> bool:
            notification = self.notification(notification_id)
            if notification is None or notification.final:
                return False
            change(notification)
            self.log.save(notification)
            return True

        return self.log.command(record)
