"""Where accepted Hawk nonces are remembered, so that a replayed request is refused.

One interface (``Nonces``), two back ends, chosen in one place
(``nonces_for``, by ``CAIRN_HAWK_NONCE_STORE``):

- ``NonceStore`` remembers them in this process, in memory. A replay sent
  to another process is not seen.
- ``SharedNonceStore`` records them in a table every process on the database
  shares (``cairn serve --workers N``, or servers on several hosts), so the
  first use wins wherever a replay lands. Recording is one statement on a
  connection of its own, never inside a command's transaction: a nonce
  counts as used once its request is authenticated, whatever the request
  then does.

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
from datetime import datetime
from typing import Any, Protocol

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


def nonces_for(kind: str, store: Any, max_entries: int) -> Nonces:
    """The nonce store a deployment asked for: ``database`` or ``memory`` (see ``Settings.nonce_store``)."""
    if kind == "database":
        return SharedNonceStore(store, NONCE_LIFETIME)
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

    def _forget_expired(self, now: float) -> None:
        entries = self._entries
        while entries and next(iter(entries.values())) <= now:
            entries.popitem(last=False)


class SharedNonceStore:
    """Nonces in the database's ``hawk_nonces`` table, keyed by a digest."""

    def __init__(self, store: Any, lifetime: float = NONCE_LIFETIME):
        self.store = store
        self.lifetime = lifetime

    def first_use(self, client_id: str, timestamp: str, nonce: str, now: float) -> bool:
        key = hashlib.sha256(_key(client_id, timestamp, nonce).encode()).digest()
        with self._session() as session:
            return session.run("record_nonce", {"key": key, "expires": now + self.lifetime}) == 1

    def prune(self, now: datetime) -> int:
        with self._session() as session:
            session.run("prune_nonces", {"now": now.timestamp()})
        return 0

    def _session(self) -> Any:
        # PostgreSQL's pooled connections commit each statement by themselves:
        # no BEGIN and COMMIT round trips. SQLite writes in a unit of work.
        return self.store.reading() if self.store.dialect == "postgres" else self.store.unit_of_work()
