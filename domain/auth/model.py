"""Clients and roles: who may call Cairn, and which scopes they hold.

Both are aggregates whose every change is an event. A client's access token
appears in its events only sealed (see ``token_cipher``). Deleting a client
or role ends its current life; creating it again continues the same
history, so the audit trail of an id is never cut.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from eventsourcing.domain import event

from cairn.domain.aggregate import CairnAggregate
from cairn.domain.errors import Conflict, InvalidInput, NotFound

STATIC_PREFIX = "static/"
#: How long a repeated createClient still counts as a retry of the first one.
CREATE_RETRY_WINDOW = timedelta(minutes=15)
#: How far a client's last recorded use may fall behind before a use is
#: recorded again (Taskcluster's ``maxLastUsedDelay``), so that a busy client
#: does not add an event to the log with every request.
LAST_USED_DELAY = timedelta(hours=6)


def refuse_static(client_id: str) -> None:
    if client_id.startswith(STATIC_PREFIX):
        raise InvalidInput(
            f'clientId "{client_id}" starts with "static/" which is reserved for statically '
            "configured clients. Contact your administrator to change static clients."
        )


def check_grantable(scopes: list[str]) -> None:
    if any(scope.endswith("**") for scope in scopes):
        raise InvalidInput("scopes must not end with `**`")


def client_key(client_id: str) -> str:
    return f"client/{client_id}"


def role_key(role_id: str) -> str:
    return f"role/{role_id}"


class Client(CairnAggregate):
    @staticmethod
    def create_id(client_id: str, **_: Any) -> str:
        return client_key(client_id)

    @event("Created")
    def __init__(
        self,
        client_id: str,
        description: str,
        expires: str,
        scopes: list[str],
        delete_on_expiration: bool,
        sealed_token: str,
    ) -> None:
        fields = (client_id, description, expires, scopes, delete_on_expiration, sealed_token)
        self._live(*fields, since=self.created_on)

    def _live(
        self,
        client_id: str,
        description: str,
        expires: str,
        scopes: list[str],
        delete_on_expiration: bool,
        sealed_token: str,
        since: datetime,
    ) -> None:
        self.since = since
        self.last_used = since
        self.client_id = client_id
        self.description = description
        self.expires = expires
        self.scopes = list(scopes)
        self.delete_on_expiration = delete_on_expiration
        self.sealed_token = sealed_token
        self.disabled = False
        self.deleted = False

    def recreate(self, **fields: Any) -> None:
        if not self.deleted:
            raise Conflict(f"client {self.client_id} already exists")
        self._recreated(**fields, timestamp=None)

    @event("Recreated")
    def _recreated(
        self,
        client_id: str,
        description: str,
        expires: str,
        scopes: list[str],
        delete_on_expiration: bool,
        sealed_token: str,
        timestamp: datetime | None,
    ) -> None:
        # `timestamp` is the event's own: filled in when the event is
        # recorded, and read back when it is replayed.
        assert timestamp is not None
        fields = (client_id, description, expires, scopes, delete_on_expiration, sealed_token)
        self._live(*fields, since=timestamp)

    def repeats(self, description: str, expires: str, scopes: list[str], now: datetime) -> bool:
        """Whether a createClient with these values is a retry of the one that made this client."""
        return (
            not self.deleted
            and not self.disabled
            and (description, expires, list(scopes)) == (self.description, self.expires, self.scopes)
            and now - self.since < CREATE_RETRY_WINDOW
        )

    def scopes_added(self, scopes: list[str]) -> list[str]:
        return [scope for scope in scopes if scope not in self.scopes]

    def _check_live(self) -> None:
        if self.deleted:
            raise NotFound(f"client {self.client_id} not found")

    def update(
        self, description: str, expires: str, scopes: list[str], delete_on_expiration: bool | None
    ) -> None:
        self._check_live()
        if description != self.description:
            self._description_changed(description)
        if expires != self.expires:
            self._expiry_changed(expires)
        if list(scopes) != self.scopes:
            self._scopes_changed(list(scopes))
        if delete_on_expiration is not None and delete_on_expiration != self.delete_on_expiration:
            self._delete_on_expiration_changed(delete_on_expiration)

    @event("DescriptionChanged")
    def _description_changed(self, description: str) -> None:
        self.description = description

    @event("ExpiryChanged")
    def _expiry_changed(self, expires: str) -> None:
        self.expires = expires

    @event("ScopesChanged")
    def _scopes_changed(self, scopes: list[str]) -> None:
        self.scopes = scopes

    @event("DeleteOnExpirationChanged")
    def _delete_on_expiration_changed(self, delete_on_expiration: bool) -> None:
        self.delete_on_expiration = delete_on_expiration

    def reset_access_token(self, sealed_token: str) -> None:
        self._check_live()
        self._access_token_reset(sealed_token)

    @event("AccessTokenReset")
    def _access_token_reset(self, sealed_token: str) -> None:
        self.sealed_token = sealed_token

    def disable(self) -> None:
        self._check_live()
        if not self.disabled:
            self._disabled()

    @event("Disabled")
    def _disabled(self) -> None:
        self.disabled = True

    def enable(self) -> None:
        self._check_live()
        if self.disabled:
            self._enabled()

    @event("Enabled")
    def _enabled(self) -> None:
        self.disabled = False

    def delete(self) -> None:
        if not self.deleted:
            self._deleted()

    @event("Deleted")
    def _deleted(self) -> None:
        self.deleted = True

    def record_use(self, now: datetime, delay: timedelta = LAST_USED_DELAY) -> bool:
        """Note that the client signed a request at ``now``; whether that was recorded.

        Only a use more than ``delay`` after the last recorded one is: the
        time is known to within ``delay``, for one event per ``delay``. A
        disabled or deleted client cannot sign requests, so it is not used.
        """
        if self.deleted or self.disabled or now - delay <= self.last_used:
            return False
        self._used(timestamp=now)
        return True

    @event("Used")
    def _used(self, timestamp: datetime | None) -> None:
        assert timestamp is not None
        self.last_used = timestamp


class Role(CairnAggregate):
    @staticmethod
    def create_id(role_id: str, **_: Any) -> str:
        return role_key(role_id)

    @event("Created")
    def __init__(self, role_id: str, description: str, scopes: list[str]) -> None:
        self._live(role_id, description, scopes)

    def _live(self, role_id: str, description: str, scopes: list[str]) -> None:
        self.role_id = role_id
        self.description = description
        self.scopes = list(scopes)
        self.deleted = False

    def recreate(self, description: str, scopes: list[str]) -> None:
        if not self.deleted:
            raise Conflict(f"role {self.role_id} already exists")
        self._recreated(self.role_id, description, scopes)

    def repeats(self, description: str, scopes: list[str]) -> bool:
        return not self.deleted and (description, list(scopes)) == (self.description, self.scopes)

    @event("Recreated")
    def _recreated(self, role_id: str, description: str, scopes: list[str]) -> None:
        self._live(role_id, description, scopes)

    def update(self, description: str, scopes: list[str]) -> None:
        if self.deleted:
            raise NotFound(f"role {self.role_id} not found")
        if description != self.description:
            self._description_changed(description)
        if list(scopes) != self.scopes:
            self._scopes_changed(list(scopes))

    @event("DescriptionChanged")
    def _description_changed(self, description: str) -> None:
        self.description = description

    @event("ScopesChanged")
    def _scopes_changed(self, scopes: list[str]) -> None:
        self.scopes = scopes

    def delete(self) -> None:
        if not self.deleted:
            self._deleted()

    @event("Deleted")
    def _deleted(self) -> None:
        self.deleted = True
