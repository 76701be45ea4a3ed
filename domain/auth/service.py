"""The auth application service: load a client or role, apply the change, save.

Access tokens are generated here and leave only in plain text — in the
response to the create or reset that made them (or to a retry of that
create). Role changes are checked against the whole role set (no cycles, no
ambiguous parameters) inside the same transaction that records them, with
role changes serialised.

Commands that grant scopes take an ``authorize`` callback: it is given the
scopes the change would add and raises if the caller may not grant them.
Where that set depends on the stored state it is called inside the
transaction, so it is decided on the state the change applies to.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Protocol

from cairn.domain.aggregate import acting_as
from cairn.domain.auth.credentials import generate_access_token
from cairn.domain.auth.model import (
    LAST_USED_DELAY,
    Client,
    Role,
    check_grantable,
    client_key,
    refuse_static,
    role_key,
)
from cairn.domain.auth.roles import DependencyCycleError, InvalidScopeError, RoleIndex, check_roles
from cairn.domain.auth.scopes import satisfies, sort_scopes
from cairn.domain.auth.token_cipher import TokenCipher
from cairn.domain.errors import Conflict, InvalidInput, NotFound
from cairn.domain.event_log import EventLog
from cairn.domain.timestamps import utcnow

Authorize = Callable[[list[str]], None]


def allow_all(_: list[str]) -> None:
    """An ``authorize`` for callers trusted with any scope (the CLI, tests)."""


class RoleSource(Protocol):
    def lock_roles(self) -> None: ...
    def all_roles(self) -> Mapping[str, list[str]]: ...


class AuthService:
    def __init__(
        self,
        log: EventLog,
        cipher: TokenCipher,
        roles: RoleSource,
        on_change: Callable[[], None] = lambda: None,
    ):
        self.log = log
        self.cipher = cipher
        self.roles = roles
        self.on_change = on_change

    # clients

    def create_client(
        self,
        client_id: str,
        description: str,
        expires: str,
        scopes: list[str],
        delete_on_expiration: bool,
        authorize: Authorize = allow_all,
    ) -> str:
        """Create a client; returns its access token.

        Repeating the same create shortly afterwards returns the same token
        (a client retrying a request whose response it lost); any other
        create of a live client is a conflict.
        """
        refuse_static(client_id)
        check_grantable(scopes)
        authorize(list(scopes))
        token = generate_access_token()
        fields = dict(
            client_id=client_id,
            description=description,
            expires=expires,
            scopes=list(scopes),
            delete_on_expiration=delete_on_expiration,
            sealed_token=self.cipher.seal(token),
        )

        def create() -> str:
            client = self.log.get(client_key(client_id))
            if client is None:
                client = Client(**fields)
            elif not client.deleted:
                if client.repeats(description, expires, scopes, utcnow()):
                    return self.cipher.open(client.sealed_token)
                raise Conflict("Client already exists")
            else:
                client.recreate(**fields)
            self.log.save(client)
            return token

        token = self.log.command(create)
        self.on_change()
        return token

    def _change_client(self, client_id: str, change: Callable[[Client], None]) -> None:
        refuse_static(client_id)

        def apply() -> None:
            client = self._live_client(client_id)
            change(client)
            self.log.save(client)

        self.log.command(apply)
        self.on_change()

    def update_client(
        self,
        client_id: str,
        description: str,
        expires: str,
        scopes: list[str] | None,
        delete_on_expiration: bool,
        authorize: Authorize = allow_all,
    ) -> None:
        """Update a client; without ``scopes`` its scopes stay as they are."""
        check_grantable(scopes or [])

        def change(client: Client) -> None:
            new_scopes = client.scopes if scopes is None else scopes
            authorize(client.scopes_added(new_scopes))
            client.update(description, expires, new_scopes, delete_on_expiration)

        self._change_client(client_id, change)

    def reset_access_token(self, client_id: str) -> str:
        token = generate_access_token()
        sealed = self.cipher.seal(token)
        self._change_client(client_id, lambda c: c.reset_access_token(sealed))
        return token

    def disable_client(self, client_id: str) -> None:
        self._change_client(client_id, Client.disable)

    def enable_client(self, client_id: str) -> None:
        self._change_client(client_id, Client.enable)

    def delete_client(self, client_id: str) -> None:
        """Delete a client; deleting one that does not exist is not an error."""
        refuse_static(client_id)

        def apply() -> None:
            client = self.log.get(client_key(client_id))
            if client is not None and not client.deleted:
                client.delete()
                self.log.save(client)

        self.log.command(apply)
        self.on_change()

    def record_client_use(
        self, client_id: str, now: datetime, delay: timedelta = LAST_USED_DELAY
    ) -> datetime | None:
        """Record that a client signed a request at ``now``, if its last recorded use is older than ``delay``.

        The event is the client's own: its actor is the client. Returns the
        client's last recorded use, whether this call recorded it or another
        process had (None for a client that is not stored, or deleted).
        Nothing else changes: the credentials every process caches do not
        depend on it, so neither the auth epoch nor this process's cache moves.
        Tried twice: after a concurrent save the client is read again, and a
        use recorded meanwhile makes this one unnecessary.
        """

        def apply() -> datetime | None:
            client = self.log.get(client_key(client_id))
            if client is None or client.deleted:
                return None
            if client.record_use(now, delay):
                self.log.save(client)
            return client.last_used

        with acting_as(client_id):
            return self.log.command(apply, attempts=2)

    def _live_client(self, client_id: str) -> Client:
        client = self.log.get(client_key(client_id))
        if client is None or client.deleted:
            raise NotFound("Client not found")
        return client

    # roles

    def create_role(
        self, role_id: str, description: str, scopes: list[str], authorize: Authorize = allow_all
    ) -> None:
        """Create a role; creating it again with the same values changes nothing."""
        check_grantable(scopes)
        authorize(list(scopes))
        scopes = sort_scopes(scopes)

        def apply() -> None:
            self.roles.lock_roles()
            role = self.log.get(role_key(role_id))
            if role is not None and not role.deleted:
                if role.repeats(description, scopes):
                    return
                raise Conflict(f"Role with roleId '{role_id}' already exists")
            _check_role_set(self.roles.all_roles(), role_id, scopes)
            if role is None:
                role = Role(role_id=role_id, description=description, scopes=scopes)
            else:
                role.recreate(description, scopes)
            self.log.save(role)

        self.log.command(apply)
        self.on_change()

    def update_role(
        self, role_id: str, description: str, scopes: list[str], authorize: Authorize = allow_all
    ) -> None:
        """Update a role; the caller must hold each new scope the role did not already grant."""
        check_grantable(scopes)

        def apply() -> None:
            self.roles.lock_roles()
            role = self.log.get(role_key(role_id))
            if role is None or role.deleted:
                raise NotFound(f"Role with roleId '{role_id}' not found")
            roles = self.roles.all_roles()
            granted = RoleIndex(roles, checked=True).expand(role.scopes)
            authorize([scope for scope in scopes if not satisfies(granted, scope)])
            _check_role_set(roles, role_id, scopes)
            role.update(description, scopes)
            self.log.save(role)

        self.log.command(apply)
        self.on_change()

    def delete_role(self, role_id: str) -> None:
        def apply() -> None:
            self.roles.lock_roles()
            role = self.log.get(role_key(role_id))
            if role is not None and not role.deleted:
                role.delete()
                self.log.save(role)

        self.log.command(apply)
        self.on_change()


def _check_role_set(roles: Mapping[str, list[str]], role_id: str, scopes: list[str]) -> None:
    candidate = dict(roles)
    candidate[role_id] = list(scopes)
    try:
        check_roles(candidate)
    except DependencyCycleError as e:
        raise InvalidInput(f"Role {role_id} would form a cycle: {e}") from None
    except InvalidScopeError as e:
        raise InvalidInput(f"Role {role_id} has an invalid scope: {e}") from None
