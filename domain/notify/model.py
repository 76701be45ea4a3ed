"""Notifications and the denylist: the notify service's aggregates.

A :class:`Notification` is one message to one address on one channel
(``email``, ``pulse``, ``slack-channel``, ``matrix-room``), asked for by an
API call or by a task's ``notify.*`` route. It is recorded as *requested*
with everything needed to send it (the rendered content), before anything
leaves Cairn; it then ends in exactly one of

- ``Sent``: the channel accepted it;
- ``Skipped``: it was never sent, and never will be (a denylisted address,
  a channel this deployment has not configured);
- ``Failed``: the channel refused it for good, or kept failing past the
  last retry.

Each failed attempt that will be retried is an ``AttemptFailed`` with the
time of the next try. A notification's id is chosen by whoever asks for it:
for a task route, a name derived from the task event and the route, so a
consumer that reads the same event again finds the notification already
recorded and sends nothing twice.

A :class:`DenylistEntry` is one ``(notificationType, address)`` pair that
receives nothing, whatever asks.
"""

from __future__ import annotations

import uuid
from typing import Any

from eventsourcing.domain import event

from cairn.domain.aggregate import CairnAggregate
from cairn.domain.errors import Conflict

#: The notificationType names of Taskcluster's denylist, which are also the channels.
CHANNELS = ("email", "pulse", "matrix-room", "slack-channel")
FINAL_STATES = frozenset({"sent", "skipped", "failed"})

_ID_NAMESPACE = uuid.UUID("3c1f7a52-0b9e-4d64-a2f1-5e7d9c0b8a41")


def notification_key(notification_id: str) -> str:
    return f"notification/{notification_id}"


def route_notification_id(task_event_id: str, task_event_version: int, route: str) -> str:
    """The id of the notification a task event asks for through one route: the same on every reading."""
    return str(uuid.uuid5(_ID_NAMESPACE, f"{task_event_id}\n{task_event_version}\n{route}"))


def denylist_key(notification_type: str, address: str) -> str:
    return f"notify-denylist/{notification_type}/{address}"


class Notification(CairnAggregate):
    @staticmethod
    def create_id(notification_id: str, **_: Any) -> str:
        return notification_key(notification_id)

    @event("Requested")
    def __init__(
        self,
        notification_id: str,
        channel: str,
        address: str,
        content: dict[str, Any],
        source: dict[str, Any],
    ) -> None:
        self.notification_id = notification_id
        self.channel = channel
        self.address = address
        self.content = content
        #: What asked for it: ``{"api": clientId}`` or the task, run, state and route.
        self.source = source
        self.state = "requested"
        self.attempts = 0
        self.error: str | None = None

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES

    def _check_open(self) -> None:
        if self.final:
            raise Conflict(f"notification {self.notification_id} is already {self.state}")

    def sent(self) -> None:
        self._check_open()
        self._sent(attempts=self.attempts + 1)

    @event("Sent")
    def _sent(self, attempts: int) -> None:
        self.attempts = attempts
        self.state = "sent"

    def attempt_failed(self, error: str, retry_at: str) -> None:
        self._check_open()
        self._attempt_failed(attempts=self.attempts + 1, error=error, retry_at=retry_at)

    @event("AttemptFailed")
    def _attempt_failed(self, attempts: int, error: str, retry_at: str) -> None:
        self.attempts = attempts
        self.error = error

    def failed(self, error: str) -> None:
        self._check_open()
        self._failed(attempts=self.attempts + 1, error=error)

    @event("Failed")
    def _failed(self, attempts: int, error: str) -> None:
        self.attempts = attempts
        self.error = error
        self.state = "failed"

    def skip(self, reason: str) -> None:
        self._check_open()
        self._skipped(reason=reason)

    @event("Skipped")
    def _skipped(self, reason: str) -> None:
        self.error = reason
        self.state = "skipped"


class DenylistEntry(CairnAggregate):
    @staticmethod
    def create_id(notification_type: str, address: str, **_: Any) -> str:
        return denylist_key(notification_type, address)

    @event("Listed")
    def __init__(self, notification_type: str, address: str) -> None:
        self.notification_type = notification_type
        self.address = address
        self.listed = True

    def relist(self) -> bool:
        if self.listed:
            return False
        self._relisted()
        return True

    @event("Relisted")
    def _relisted(self) -> None:
        self.listed = True

    def unlist(self) -> bool:
        if not self.listed:
            return False
        self._unlisted()
        return True

    @event("Unlisted")
    def _unlisted(self) -> None:
        self.listed = False
