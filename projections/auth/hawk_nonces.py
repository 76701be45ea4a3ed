"""Hawk nonces remembered in the database, shared by every process serving it.

``NonceStore`` (``api/hawk.py``) remembers nonces in one process. With
several processes on one database (``cairn serve --workers N``, or servers on
several hosts) a replay sent to another process would pass it; this store
records each accepted nonce in a table all of them share, so the first use
wins wherever the replay lands. It keeps each nonce as long as the memory
store does, until a replay would be refused for its timestamp anyway, and
the reaper forgets older ones.

Recording is one statement on a connection of its own, never inside a
command's transaction: a nonce counts as used once its request is
authenticated, whatever the request then does.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any


class SharedNonceStore:
    def __init__(self, store: Any, lifetime: float):
        self.store = store
        self.lifetime = lifetime

    def first_use(self, client_id: str, timestamp: str, nonce: str, now: float) -> bool:
        """Record the nonce; True unless some process recorded it already."""
        key = hashlib.sha256(f"{client_id}\n{timestamp}\n{nonce}".encode()).digest()
        with self._session() as session:
            return session.run("record_nonce", {"key": key, "expires": now + self.lifetime}) == 1

    def prune(self, now: datetime) -> int:
        """A reaper pass: forget nonces past their replay window. Issues no command."""
        with self._session() as session:
            session.run("prune_nonces", {"now": now.timestamp()})
        return 0

    def _session(self) -> Any:
        # PostgreSQL's pooled connections commit each statement by themselves:
        # no BEGIN and COMMIT round trips. SQLite writes in a unit of work.
        return self.store.reading() if self.store.dialect == "postgres" else self.store.unit_of_work()
