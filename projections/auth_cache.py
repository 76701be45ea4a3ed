"""What authentication reads on every request: clients and the role index, cached.

The cache is rebuilt from the clients and roles views whenever the auth
epoch moves (any client or role event bumps it in the same transaction).
The epoch is checked at most every ``refresh_interval`` seconds, at once
after a change made by this process, and at once when an unknown clientId
appears, so that a client created a moment ago can call straight away.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from cairn.domain.credentials import ClientRecord
from cairn.domain.roles import RoleIndex
from cairn.domain.timestamps import utcnow
from cairn.domain.token_cipher import TokenCipher

FAR_FUTURE = datetime.fromisoformat("3000-01-01T00:00:00+00:00")


@dataclass(frozen=True)
class StaticClient:
    client_id: str
    access_token: str
    scopes: tuple[str, ...]
    description: str = "Static client, configured by the deployment"
    configured: datetime = field(default_factory=utcnow)


@dataclass
class _Snapshot:
    epoch: int
    index: RoleIndex
    rows: dict[str, dict[str, Any]]
    records: dict[str, ClientRecord]


class AuthCache:
    def __init__(
        self,
        store: Any,
        cipher: TokenCipher,
        static_clients: Mapping[str, StaticClient],
        refresh_interval: float = 0.5,
    ):
        self.store = store
        self.cipher = cipher
        self.static_clients = dict(static_clients)
        self.refresh_interval = refresh_interval
        self._lock = threading.Lock()
        self._snapshot: _Snapshot | None = None
        self._checked_at = 0.0

    # RoleSource, for the auth service inside its transaction

    def lock_roles(self) -> None:
        with self.store.reading() as session:
            session.rows("lock_roles")

    def all_roles(self) -> dict[str, list[str]]:
        with self.store.reading() as session:
            return {r["role_id"]: orjson.loads(r["scopes"]) for r in session.rows("all_roles")}

    # cache

    def invalidate(self) -> None:
        self._checked_at = 0.0

    def _current(self, force: bool = False) -> _Snapshot:
        now = time.monotonic()
        snapshot = self._snapshot
        if snapshot is not None and not force and now - self._checked_at < self.refresh_interval:
            return snapshot
        with self._lock:
            if self._snapshot is not None and self._snapshot is not snapshot:
                return self._snapshot
            with self.store.reading() as session:
                row = session.one("get_auth_epoch")
                epoch = row["epoch"] if row else 0
                if snapshot is None or snapshot.epoch != epoch:
                    roles = {r["role_id"]: orjson.loads(r["scopes"]) for r in session.rows("all_roles")}
                    rows = {r["client_id"]: r for r in session.rows("all_clients")}
                    snapshot = _Snapshot(epoch, RoleIndex(roles, checked=True), rows, {})  # roles were checked as they were written
                    self._snapshot = snapshot
            self._checked_at = time.monotonic()
            assert snapshot is not None
            return snapshot

    @property
    def index(self) -> RoleIndex:
        return self._current().index

    def expand(self, scopes: list[str]) -> list[str]:
        return self._current().index.expand(scopes)

    def lookup_client(self, client_id: str) -> ClientRecord | None:
        static = self.static_clients.get(client_id)
        snapshot = self._current()
        if static is not None:
            return ClientRecord(
                client_id, static.access_token, snapshot.index.expand(static.scopes), FAR_FUTURE
            )
        record = snapshot.records.get(client_id)
        if record is not None:
            return record
        row = snapshot.rows.get(client_id)
        if row is None:
            snapshot = self._current(force=True)
            row = snapshot.rows.get(client_id)
            if row is None:
                return None
        record = ClientRecord(
            client_id=client_id,
            access_token=self.cipher.open(row["sealed_token"]),
            scopes=snapshot.index.expand(orjson.loads(row["scopes"])),
            expires=datetime.fromisoformat(row["expires"].replace("Z", "+00:00")),
            disabled=bool(row["disabled"]),
        )
        snapshot.records[client_id] = record
        return record
