"""The secrets view: which secrets exist and when they expire, kept in the transaction of each secret event.

It holds names and expiries only; a secret's value is read from its
aggregate, sealed, and opened only to answer ``get``.
"""

from __future__ import annotations

from typing import Any

from cairn.domain.secrets.model import PREFIX, Secret
from cairn.domain.timestamps import iso
from cairn.projections.projection import Projection
from cairn.projections.store.session import SqlSession


class SecretViews(Projection):
    name = "secrets"
    tables = ("secrets",)

    def register(self) -> None:
        self.on(Secret.Created, self.secret_set)
        self.on(Secret.Set, self.secret_set)
        self.on(Secret.Removed, self.secret_gone)
        self.on(Secret.Expired, self.secret_gone)

    def secret_set(self, session: SqlSession, e: Any, _: Any = None) -> None:
        session.run(
            "upsert_secret",
            {"name": _name(e), "expires": e.expires, "modified": iso(e.timestamp)},
        )

    def secret_gone(self, session: SqlSession, e: Any, _: Any = None) -> None:
        session.run("delete_secret", {"name": _name(e)})


def _name(e: Any) -> str:
    return e.originator_id.removeprefix(PREFIX)


class SecretReads:
    def __init__(self, store: Any):
        self.store = store

    def names(self, now: str, after: str, limit: int) -> list[str]:
        """Up to ``limit`` names of unexpired secrets after ``after``, in order."""
        with self.store.reading() as session:
            rows = session.rows("list_secrets", {"now": now, "after": after, "limit": limit})
        return [row["name"] for row in rows]

    def expiries(self, now: str, after: str, limit: int) -> dict[str, str]:
        """The expiry of up to ``limit`` unexpired secrets after ``after``, by name (for the web UI)."""
        with self.store.reading() as session:
            rows = session.rows("list_secret_expiries", {"now": now, "after": after, "limit": limit})
        return {row["name"]: row["expires"] for row in rows}

    def expired(self, now: str, limit: int) -> list[str]:
        with self.store.reading() as session:
            rows = session.rows("expired_secrets", {"now": now, "limit": limit})
        return [row["name"] for row in rows]
