"""The clients and roles views, kept in the transaction of every auth event.

Authentication reads these (never the aggregates), and so do the auth
service's listings. ``auth_epoch`` counts changes, so that every process can
tell cheaply whether its cached role index and credentials are stale; a
client's recorded use changes only its ``last_date_used``, which no cache
serves, and is not counted. A rebuild moves it on too (``swapped_in``).
"""

from __future__ import annotations

from typing import Any

import orjson

from cairn.domain.auth.model import Client, Role
from cairn.domain.timestamps import iso
from cairn.projections.projection import Projection
from cairn.projections.read_model import ReadModel
from cairn.projections.store.session import SqlSession


class AuthViews(Projection):
    name = "auth"
    tables = ("clients", "roles", "auth_epoch")
    # Not the log's to give once a rebuild has moved it (``swapped_in``).
    ignored_columns = {"auth_epoch": ("id", "epoch")}

    def register(self) -> None:
        self.on(Client.Created, self.client_created)
        self.on(Client.Recreated, self.client_created)
        self.on(Client.DescriptionChanged, self.client_field("description", "description"))
        self.on(Client.ExpiryChanged, self.client_field("expires", "expires"))
        self.on(Client.ScopesChanged, self.client_field("scopes", "scopes"))
        self.on(
            Client.DeleteOnExpirationChanged,
            self.client_field("delete_on_expiration", "delete_on_expiration"),
        )
        self.on(Client.AccessTokenReset, self.client_token_reset)
        self.on(Client.Disabled, self.client_disabled(True))
        self.on(Client.Enabled, self.client_disabled(False))
        self.on(Client.Deleted, self.client_deleted)
        self.on(Client.Used, self.client_used)
        self.on(Role.Created, self.role_created)
        self.on(Role.Recreated, self.role_created)
        self.on(Role.DescriptionChanged, self.role_field("description"))
        self.on(Role.ScopesChanged, self.role_field("scopes"))
        self.on(Role.Deleted, self.role_deleted)

    @staticmethod
    def bump(session: SqlSession) -> None:
        session.run("bump_auth_epoch")

    def swapped_in(self, session: SqlSession, replaced: SqlSession) -> None:
        # A process reloads its cached clients and roles when the epoch is no
        # longer the one it loaded them at. A replay counts the log's changes,
        # as the live epoch did: left at that, a process that had cached rows
        # the rebuild has just put right would serve them until the next
        # change. Past every value the epoch has had, it is one no process
        # can have loaded at, and every one reloads.
        before, replayed = _epoch(replaced), _epoch(session)
        session.run("set_auth_epoch", {"epoch": max(before, replayed) + 1})

    def client_created(self, session: SqlSession, e: Any, _: Any = None) -> None:
        when = iso(e.timestamp)
        session.run(
            "upsert_client",
            {
                "client_id": e.client_id,
                "description": e.description,
                "scopes": orjson.dumps(e.scopes).decode(),
                "expires": e.expires,
                "delete_on_expiration": e.delete_on_expiration,
                "sealed_token": e.sealed_token,
                "created": when,
            },
        )
        self.bump(session)

    def client_field(self, attribute: str, column: str) -> Any:
        query = f"set_client_{column}"

        def handle(session: SqlSession, e: Any, _: Any = None) -> None:
            value = getattr(e, attribute)
            if isinstance(value, list):
                value = orjson.dumps(value).decode()
            session.run(
                query,
                {"client_id": _client_id(e), "value": value, "modified": iso(e.timestamp)},
            )
            self.bump(session)

        return handle

    def client_token_reset(self, session: SqlSession, e: Any, _: Any = None) -> None:
        session.run(
            "set_client_token",
            {"client_id": _client_id(e), "value": e.sealed_token, "modified": iso(e.timestamp)},
        )
        self.bump(session)

    def client_disabled(self, disabled: bool) -> Any:
        def handle(session: SqlSession, e: Any, _: Any = None) -> None:
            session.run(
                "set_client_disabled",
                {"client_id": _client_id(e), "value": disabled, "modified": iso(e.timestamp)},
            )
            self.bump(session)

        return handle

    def client_deleted(self, session: SqlSession, e: Any, _: Any = None) -> None:
        session.run("delete_client", {"client_id": _client_id(e)})
        self.bump(session)

    def client_used(self, session: SqlSession, e: Any, _: Any = None) -> None:
        # No bump: no cached credentials depend on lastDateUsed, and a bump
        # would have every process reload every client and role.
        session.run("set_client_last_date_used", {"client_id": _client_id(e), "value": iso(e.timestamp)})

    def role_created(self, session: SqlSession, e: Any, _: Any = None) -> None:
        session.run(
            "upsert_role",
            {
                "role_id": e.role_id,
                "description": e.description,
                "scopes": orjson.dumps(e.scopes).decode(),
                "created": iso(e.timestamp),
            },
        )
        self.bump(session)

    def role_field(self, column: str) -> Any:
        query = f"set_role_{column}"

        def handle(session: SqlSession, e: Any, _: Any = None) -> None:
            value = getattr(e, column)
            if isinstance(value, list):
                value = orjson.dumps(value).decode()
            session.run(
                query, {"role_id": _role_id(e), "value": value, "modified": iso(e.timestamp)}
            )
            self.bump(session)

        return handle

    def role_deleted(self, session: SqlSession, e: Any, _: Any = None) -> None:
        session.run("delete_role", {"role_id": _role_id(e)})
        self.bump(session)


def _epoch(session: SqlSession) -> int:
    row = session.one("get_auth_epoch")
    return int(row["epoch"]) if row else 0


def _client_id(e: Any) -> str:
    return e.originator_id.removeprefix("client/")


def _role_id(e: Any) -> str:
    return e.originator_id.removeprefix("role/")


# Reading the views: rows with their JSON and boolean columns decoded.

ALL_ROWS = 2**31 - 1


def _client_row(row: dict[str, Any]) -> dict[str, Any]:
    row["scopes"] = orjson.loads(row["scopes"])
    row["disabled"] = bool(row["disabled"])
    row["delete_on_expiration"] = bool(row["delete_on_expiration"])
    return row


def _role_row(row: dict[str, Any]) -> dict[str, Any]:
    row["scopes"] = orjson.loads(row["scopes"])
    return row


def get_client(store: Any, client_id: str) -> dict[str, Any] | None:
    with store.reading() as session:
        row = session.one("get_client", {"client_id": client_id})
    return _client_row(row) if row else None


def list_clients(store: Any, prefix: str, after: str, limit: int) -> list[dict[str, Any]]:
    """Up to ``limit`` clients whose ids start with ``prefix`` and sort after ``after``."""
    with store.reading() as session:
        rows = session.rows("list_clients", {"prefix": prefix, "after": after, "limit": limit})
    return [_client_row(row) for row in rows]


def get_role(store: Any, role_id: str) -> dict[str, Any] | None:
    with store.reading() as session:
        row = session.one("get_role", {"role_id": role_id})
    return _role_row(row) if row else None


def list_roles(store: Any, after: str = "", limit: int | None = None) -> list[dict[str, Any]]:
    """Roles in id order after ``after``: ``limit`` of them, or all."""
    with store.reading() as session:
        if limit is None and not after:
            rows = session.rows("all_roles")
        else:
            rows = session.rows("list_roles", {"after": after, "limit": limit or ALL_ROWS})
    return [_role_row(row) for row in rows]


class AuthReadModel(ReadModel):
    """The clients and roles views as the auth API reads them."""

    def client(self, client_id: str) -> dict[str, Any] | None:
        return get_client(self.store, client_id)

    def clients(self, prefix: str, after: str, limit: int) -> list[dict[str, Any]]:
        return list_clients(self.store, prefix, after, limit)

    def role(self, role_id: str) -> dict[str, Any] | None:
        return get_role(self.store, role_id)

    def roles(self, after: str = "", limit: int | None = None) -> list[dict[str, Any]]:
        return list_roles(self.store, after, limit)
