"""What authentication reads on every request: clients and the role index, cached.

The cache is rebuilt from the clients and roles views whenever the auth
epoch moves (any client or role event bumps it in the same transaction,
except a recorded use, which changes nothing the cache serves; a rebuild of
the views moves it past every value it has had).
The epoch is checked at most every ``refresh_interval`` seconds, at once
after a change made by this process, and at once when an unknown clientId
appears, so that a client created a moment ago can call straight away.

:class:`ClientUse` records, from what the cache knows, when a stored client
signed a request.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
import psycopg
from eventsourcing.persistence import PersistenceError

from cairn.domain.auth.credentials import ClientRecord
from cairn.domain.auth.roles import RoleIndex
from cairn.domain.auth.token_cipher import TokenCipher
from cairn.domain.event_log import ConcurrentChange
from cairn.domain.timestamps import parse_time, utcnow
from cairn.projections.store.loop_greenlets import LoopSafeLock

FAR_FUTURE = datetime.fromisoformat("3000-01-01T00:00:00+00:00")

log = logging.getLogger("cairn.auth")

#: The stored clients looked up to check the signature of the request being
#: authenticated in this context (see :meth:`ClientUse.watching`); None outside.
_signers: ContextVar[list[str] | None] = ContextVar("cairn_signers", default=None)


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
    #: Static clients' records, their scopes expanded through this snapshot's roles once.
    statics: dict[str, ClientRecord] = field(default_factory=dict)


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
        self._lock = LoopSafeLock()
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
        if snapshot is not None and not force:
            checked_at = self._checked_at
            if now - checked_at < self.refresh_interval:
                return snapshot
            if checked_at and self._lock.locked():
                # Another request is checking the epoch because the interval
                # is up: this one goes on with what that check replaces, as
                # every request did a moment ago, instead of waiting on the
                # loop for the lock (a few milliseconds, twice a second, for
                # each request that arrives meanwhile). After a change of this
                # process (``invalidate``) every request waits for the check.
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
            record = snapshot.statics.get(client_id)
            if record is None:
                record = ClientRecord(client_id, static.access_token, snapshot.index.expand(static.scopes), FAR_FUTURE)
                snapshot.statics[client_id] = record
            return record
        signers = _signers.get()
        if signers is not None:
            signers.append(client_id)
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
            expires=parse_time(row["expires"]),
            disabled=bool(row["disabled"]),
        )
        snapshot.records[client_id] = record
        return record

    def last_date_used(self, client_id: str) -> datetime | None:
        """A stored client's last use, as the clients view had it when the cache was loaded."""
        row = self._current().rows.get(client_id)
        return parse_time(row["last_date_used"]) if row is not None else None


#: Failures of recording a use that are the database's, not Cairn's.
_DATABASE_TROUBLE = (ConcurrentChange, PersistenceError, psycopg.Error, sqlite3.Error)


class ClientUse:
    """Records that stored clients signed requests: at most once per ``delay`` per client.

    Taskcluster moves a client's lastDateUsed when the client signs a request
    (temporary credentials: the client that issued them), but only when the
    stored value is older than ``maxLastUsedDelay`` — six hours — so that a
    busy client does not write with every request. Here that write is the
    client's ``Used`` event, recorded once the request's signature has been
    checked. Whether a use is due is decided in memory, against the newest use
    this process knows of (the one the cache loaded, or one recorded since), so
    only a due use reads or writes the database: once per client, process and
    ``delay``. Like Taskcluster, a process claims the due use before writing
    it and does not try again within ``delay`` if the write fails; a failure
    (the database away, another process saving the client at the same moment)
    is logged at debug and the request goes on. It is bookkeeping, best effort.
    """

    def __init__(
        self,
        cache: AuthCache,
        record: Callable[[str, datetime, timedelta], datetime | None],
        delay: timedelta,
    ):
        self.cache = cache
        self.record = record
        self.delay = delay
        self._known: dict[str, datetime] = {}
        self._lock = LoopSafeLock()

    @contextmanager
    def watching(self) -> Iterator[None]:
        """A use of each stored client whose key signs the request authenticated in this block, if it succeeds."""
        signers: list[str] = []
        token = _signers.set(signers)
        try:
            yield
        finally:
            _signers.reset(token)
        for client_id in signers:
            self.used(client_id, utcnow())

    def used(self, client_id: str, now: datetime) -> None:
        """Note that ``client_id`` signed a request at ``now``; never raises."""
        known = self._known.get(client_id)
        if known is not None and now - self.delay <= known:
            return  # the common case: recorded recently enough
        try:
            with self._lock:
                known = self._known.get(client_id) or self.cache.last_date_used(client_id)
                if known is None:
                    return
                if now - self.delay <= known:
                    self._known[client_id] = known
                    return
                self._known[client_id] = now  # claimed: other requests need not try
            last = self.record(client_id, now, self.delay)
        except _DATABASE_TROUBLE as trouble:
            log.debug("use of client %s not recorded: %r", client_id, trouble)
            return
        except Exception:
            log.warning("use of client %s not recorded", client_id, exc_info=True)
            return
        if last is not None:
            self._known[client_id] = last  # this use, or one another process recorded
