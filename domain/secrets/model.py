"""Secrets: named JSON values that tasks may read with ``secrets:get:<name>``.

A secret is an aggregate whose every change is an event. The value never
appears in an event in plain text: it is sealed with the deployment key (as
access tokens are, see ``domain/auth/token_cipher.py``) before the event is
made, and the field holding it is named so that every history view redacts
it. Removing a secret, or its expiry, ends its current life; setting it
again continues the same history.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from eventsourcing.domain import event

from cairn.domain.aggregate import CairnAggregate
from cairn.domain.timestamps import parse_time

PREFIX = "secret/"


def secret_key(name: str) -> str:
    return f"{PREFIX}{name}"


class Secret(CairnAggregate):
    @staticmethod
    def create_id(name: str, **_: Any) -> str:
        return secret_key(name)

    @event("Created")
    def __init__(self, name: str, sealed_secret: str, expires: str) -> None:
        self.name = name
        self._live(sealed_secret, expires)

    def _live(self, sealed_secret: str, expires: str) -> None:
        self.sealed_secret = sealed_secret
        self.expires = expires
        self.removed = False
        self.expired = False

    @property
    def exists(self) -> bool:
        return not self.removed and not self.expired

    def set(self, sealed_secret: str, expires: str) -> None:
        self._set(sealed_secret, expires)

    @event("Set")
    def _set(self, sealed_secret: str, expires: str) -> None:
        self._live(sealed_secret, expires)

    def remove(self) -> None:
        if self.exists:
            self._removed()

    @event("Removed")
    def _removed(self) -> None:
        self.removed = True
        self.sealed_secret = ""

    def lapsed(self, now: datetime) -> bool:
        """Whether its expiry has passed, recorded or not."""
        return self.expired or (not self.removed and parse_time(self.expires) <= now)

    def expire(self, now: datetime) -> None:
        """Record that the secret expired; only a live secret whose expiry has passed does."""
        if self.exists and parse_time(self.expires) <= now:
            self._expired()

    @event("Expired")
    def _expired(self) -> None:
        self.expired = True
        self.sealed_secret = ""
