"""The auth application service: load a client or role, apply the change, save.

Access tokens are generated here and leave only twice in plain text — in the
response to the create or reset that made them. Role changes are checked
against the whole role set (no cycles, no ambiguous parameters) inside the
same transaction that records them, with role changes serialised.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

from cairn.domain.auth_model import Client, Role, client_key, role_key
from cairn.domain.credentials import generate_access_token
from cairn.domain.errors import Conflict, InvalidInput, NotFound
from cairn.domain.event_log import EventLog
from cairn.domain.roles import DependencyCycleError, InvalidScopeError, check_roles
from cairn.domain.token_cipher import TokenCipher

STATIC_PREFIX = "static/"


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
    ) -> str:
        """Create a client; returns its new access token."""
        _refuse_static(client_id)
        token = generate_access_token()
        fields = dict(
            client_id=client_id,
            description=description,
            expires=expires,
            scopes=scopes,
            delete_on_expiration=delete_on_expiration,
            sealed_token=self.cipher.seal(token),
        )

        def create() -> None:
            client = self.log.get(client_key(client_id))
            if client is None:
                client = Client(**fields)
            else:
                client.recreate(**fields)
            self.log.save(client)

        self.log.command(create)
        self.on_change()
        return token

    def _change_client(self, client_id: str, change: Callable[[Client], None]) -> None:
        _refuse_static(client_id)

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
        scopes: list[str],
        delete_on_expiration: bool | None,
    ) -> None:
        self._change_client(
            client_id, lambda c: c.update(description, expires, scopes, delete_on_expiration)
        )

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
        _refuse_static(client_id)

        def apply() -> None:
            client = self.log.get(client_key(client_id))
            if client is not None and not client.deleted:
                client.delete()
                self.log.save(client)

        self.log.command(apply)
        self.on_change()

    def _live_client(self, client_id: str) -> Client:
        client = self.log.get(client_key(client_id))
        if client is None or client.deleted:
            raise NotFound(f"Client {client_id} not found")
        return client

    # roles

    def create_role(self, role_id: str, description: str, scopes: list[str]) -> None:
        def apply() -> None:
            self.roles.lock_roles()
            role = self.log.get(role_key(role_id))
            if role is not None and not role.deleted:
                if role.description == description and role.scopes == list(scopes):
                    return
                raise Conflict(f"Role {role_id} already exists with different properties")
            self._check_role_set(role_id, scopes)
            if role is None:
                role = Role(role_id=role_id, description=description, scopes=scopes)
            else:
                role.recreate(description, scopes)
            self.log.save(role)

        self.log.command(apply)
        self.on_change()

    def update_role(self, role_id: str, description: str, scopes: list[str]) -> None:
        def apply() -> None:
            self.roles.lock_roles()
            role = self.log.get(role_key(role_id))
            if role is None or role.deleted:
                raise NotFound(f"Role {role_id} not found")
            self._check_role_set(role_id, scopes)
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

    def _check_role_set(self, role_id: str, scopes: list[str]) -> None:
        candidate = dict(self.roles.all_roles())
        candidate[role_id] = list(scopes)
        try:
            check_roles(candidate)
        except DependencyCycleError as e:
            raise InvalidInput(f"Role {role_id} would form a cycle: {e}") from None
        except InvalidScopeError as e:
            raise InvalidInput(f"Role {role_id} has an invalid scope: {e}") from None


def _refuse_static(client_id: str) -> None:
    if client_id.startswith(STATIC_PREFIX):
        raise InvalidInput(f"Client {client_id} is static: it is configured, not managed by the API")
