"""The secrets application service: seal, load, change, save.

The value goes in sealed and comes out opened, only through ``get``; an
expired secret is refused with ``Expired`` from the moment its expiry passes,
whether or not the time-driven pass has recorded the expiry yet.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import orjson

from cairn.domain.auth.token_cipher import TokenCipher
from cairn.domain.errors import Expired, NotFound
from cairn.domain.event_log import EventLog
from cairn.domain.secrets.model import Secret, secret_key
from cairn.domain.timestamps import iso, parse_time


class SecretsService:
    def __init__(self, log: EventLog, cipher: TokenCipher):
        self.log = log
        self.cipher = cipher

    def set(self, name: str, value: dict[str, Any], expires: str) -> None:
        """Create or replace a secret; its value is sealed before any event holds it."""
        sealed = self.cipher.seal(orjson.dumps(value).decode())
        expires = iso(parse_time(expires))

        def apply() -> None:
            secret = self.log.get(secret_key(name))
            if secret is None:
                secret = Secret(name=name, sealed_secret=sealed, expires=expires)
            else:
                secret.set(sealed, expires)
            self.log.save(secret)

        self.log.command(apply)

    def get(self, name: str, now: datetime) -> tuple[dict[str, Any], str]:
        """The secret's value and expiry; NotFound if there is none, Expired once it has expired."""
        secret = self.log.get(secret_key(name))
        if secret is None or secret.removed:
            raise NotFound("Secret not found")
        if secret.lapsed(now):
            raise Expired(f"Secret {name} expired at {secret.expires}")
        return orjson.loads(self.cipher.open(secret.sealed_secret)), secret.expires

    def remove(self, name: str) -> None:
        """Remove a secret; removing one that does not exist is not an error."""

        def apply() -> None:
            secret = self.log.get(secret_key(name))
            if secret is not None and secret.exists:
                secret.remove()
                self.log.save(secret)

        self.log.command(apply)

    def expire(self, names: Iterable[str], now: datetime) -> int:
        """Record the expiry of each named secret whose time has passed; returns how many."""
        done = 0
        for name in names:

            def apply(name: str = name) -> int:
                secret = self.log.get(secret_key(name))
                if secret is None or not secret.exists or not secret.lapsed(now):
                    return 0
                secret.expire(now)
                self.log.save(secret)
                return 1

            done += self.log.command(apply)
        return done


