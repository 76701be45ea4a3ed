"""Where accepted Hawk nonces are remembered, so that a replayed request is refused.

One interface (``Nonces``), two back ends, chosen in one place
(``nonces_for``, by ``CAIRN_HAWK_NONCE_STORE``):

- ``NonceStore`` remembers them in this process, in memory. A replay sent
  to another process is not seen.
- ``SharedNonceStore`` records them in a table every process on the database
  shares (``cairn serve --workers N``, or servers on several hosts), so the
  first use wins wherever a replay lands. Recording is one statement on a
  connection of its own; but in a request that ``deferring()`` covers (the
  task lifecycle's commands, on PostgreSQL) it rides in the flight of the
  request's first command: a replay's insert then fails on the key, which
  aborts that command before it commits anything (``ReplayedRequest``).
  Either way a nonce counts as used once its request is authenticated,
  whatever the request then does: a request whose command did not commit
  records it on its own connection at the end.

Both keep a nonce for ``NONCE_LIFETIME``: a request is accepted only if its
timestamp is within ``TIMESTAMP_SKEW_SECONDS`` of our clock, so a copy of it
passes that check only until timestamp + skew, at most 2 x skew after it was
first accepted. Only requests that passed every other check are recorded,
so entries cannot be planted with far-off timestamps. The reaper forgets
nonces past that window (``prune``).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from cairn.domain.errors import ReplayedRequest

TIMESTAMP_SKEW_SECONDS = 15 * 60
#: How long a nonce is remembered: a copy of a request passes the timestamp
#: check until its timestamp + skew, at most 2 x skew after it was accepted.
NONCE_LIFETIME = 2 * TIMESTAMP_SKEW_SECONDS


class Nonces(Protocol):
    def first_use(self, client_id: str, timestamp: str, nonce: str, now: float) -> bool:
        """Record the nonce; True unless it was recorded already."""
        ...

    def prune(self, now: datetime) -> int:
        """A reaper pass: forget nonces past their replay window. Issues no command."""
        ...

    def deferring(self) -> Any:
        """Around a request whose nonce may be recorded by its first command (a context manager)."""
        ...


def nonces_for(kind: str, store: Any, max_entries: int) -> Nonces:
    """The nonce store a deployment asked for: ``database`` or ``memory`` (see ``Settings.nonce_store``)."""
    if kind == "database":
        return SharedNonceStore(store, NONCE_LIFETIME, in_command=store.dialect == "postgres")
    return NonceStore(max_entries=max_entries, lifetime=NONCE_LIFETIME)


def _key(client_id: str, timestamp: str, nonce: str) -> str:
    return f"{client_id}\n{timestamp}\n{nonce}"


class NonceStore:
    """Nonces in this process's memory, at most ``max_entries`` of them.

    Every entry lives equally long, so insertion order is expiry order:
    expired entries are always at the front of the OrderedDict. Past
    ``max_entries`` the oldest entries, those nearest to expiry, are dropped
    first. That is the one place a replay could slip through, chosen over
    unbounded growth.
    """

    def __init__(self, max_entries: int = 250_000, lifetime: float = NONCE_LIFETIME) -> None:
        self._entries: OrderedDict[str, float] = OrderedDict()
        self._max_entries = max_entries
        self._lifetime = lifetime
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def first_use(self, client_id: str, timestamp: str, nonce: str, now: float) -> bool:
        key = _key(client_id, timestamp, nonce)
        with self._lock:
            entries = self._entries
            self._forget_expired(now)
            if key in entries:
                return False
            if len(entries) >= self._max_entries:
                entries.popitem(last=False)
            entries[key] = now + self._lifetime
            return True

    def prune(self, now: datetime) -> int:
        with self._lock:
            self._forget_expired(now.timestamp())
        return 0

    def deferring(self) -> Any:
        return nullcontext()  # in memory, recording costs nothing worth deferring

    def _forget_expired(self, now: float) -> None:
        entries = self._entries
        while entries and next(iter(entries.values())) <= now:
            entries.popitem(last=False)


@dataclass
class _Deferred:
    """The nonce of the request in progress, until a command records it."""

    key: bytes | None = None
    expires: float = 0.0
    recorded: bool = False

    def committed(self) -> None:
        self.recorded = True


_DEFERRED: ContextVar[_Deferred | None] = ContextVar("cairn-deferred-nonce", default=None)


class SharedNonceStore:
    """Nonces in the database's ``hawk_nonces`` table, keyed by a digest.

    ``in_command`` (PostgreSQL, where a command's writes go in one flight):
    within ``deferring()``, the nonce is recorded by the request's first
    unit of work, in its flight, rather than by a round trip of its own.
    """

    def __init__(self, store: Any, lifetime: float = NONCE_LIFETIME, in_command: bool = False):
        self.store = store
        self.lifetime = lifetime
        self.in_command = in_command
        if in_command:
            store.begin_hooks.append(self._record_in_command)

    def first_use(self, client_id: str, timestamp: str, nonce: str, now: float) -> bool:
        key = hashlib.sha256(_key(client_id, timestamp, nonce).encode()).digest()
        deferred = _DEFERRED.get()
        if deferred is not None and deferred.key is None:
            deferred.key, deferred.expires = key, now + self.lifetime
            return True
        return self._record(key, now + self.lifetime)

    @contextmanager
    def deferring(self) -> Iterator[None]:
        """Around one request: its nonce is recorded by its first committed unit of work.

        Should none commit (the request was refused, or wrote nothing), the
        nonce is recorded on leaving, as it would have been at once; a replay
        is then refused with ``ReplayedRequest``, whatever the request did,
        and it did nothing durable. For requests whose handler changes
        nothing outside units of work before its first command.
        """
        if not self.in_command:
            yield
            return
        deferred = _Deferred()
        token = _DEFERRED.set(deferred)
        try:
            yield
        finally:
            _DEFERRED.reset(token)
            if deferred.key is not None and not deferred.recorded:
                if not self._record(deferred.key, deferred.expires):
                    raise ReplayedRequest()

    def _record_in_command(self, session: Any) -> None:
        """A unit of work begins: the deferred nonce goes in its flight, with its first writes.

        A plain insert: a replay's fails on the key and aborts the unit of
        work, so nothing in it counts (the back end raises
        ``ReplayedRequest``, which is never retried).
        """
        deferred = _DEFERRED.get()
        if deferred is None or deferred.key is None or deferred.recorded:
            return
        session.defer("record_nonce_in_command", {"key": deferred.key, "expires": deferred.expires})
        session.on_commit(deferred.committed)

    def _record(self, key: bytes, expires: float) -> bool:
        with self._session() as session:
            return session.run("record_nonce", {"key": key, "expires": expires}) == 1

    def prune(self, now: datetime) -> int:
        with self._session() as session:
            session.run("prune_nonces", {"now": now.timestamp()})
        return 0

    def _session(self) -> Any:
        # PostgreSQL's pooled connections commit each statement by themselves:
        # no BEGIN and COMMIT round trips. SQLite writes in a unit of work.
        return self.store.reading() if self.store.dialect == "postgres" else self.store.unit_of_work()
