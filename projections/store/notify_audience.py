"""Whether a NOTIFY on one of Cairn's channels would reach another process.

Each commit used to send a NOTIFY on the log's channel (and each task made
pending one on ``cairn_pending``) for the other processes on the same
database. A process's own listener passes over its own notifications: it
has been told at the commit. So when a process serves alone, every
notification is work for the database, for the listener's connection and
thread, and for nobody.

Every listening connection holds a shared advisory lock of its channel
(``listening``) for as long as it lives; PostgreSQL lets go of it when the
connection ends, however it ends. While it listens, the process counts the
holders every ``LOOK_AGAIN`` seconds (``look``): its commits notify only
while somebody else holds the lock. A process that does not listen
notifies always: it cannot know who does.

What that costs: a process that starts listening is heard of by the others
within ``LOOK_AGAIN`` seconds (a little more if their listener waits for a
notification meanwhile). A notification missed in that window costs a
delay, not a stall: log followers and claimWork's waiters look again after
a timeout of their own, as they do after a lost notification.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

#: Seconds between two counts of the listeners.
LOOK_AGAIN = 1.0

_HOLDERS = """
SELECT count(*) FROM pg_locks
WHERE locktype = 'advisory' AND mode = 'ShareLock' AND granted
  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND classid = %s AND objid = %s AND objsubid = 1
"""


def listeners_key(channel: str) -> int:
    """The advisory lock held by the listeners of ``channel``: a signed 64-bit number of its name."""
    digest = hashlib.sha256(f"cairn-listeners:{channel}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class Audience:
    """Who else listens on ``channel``, as this process's listener last counted."""

    def __init__(self, channel: str):
        self.key = listeners_key(channel)
        #: Whether a notification on the channel may reach another process: until counted, it may.
        self.others = True
        self._counted_at = 0.0
        #: Listening connections of this process holding the lock (each counts itself out).
        self._own = 0

    def listening(self, conn: Any) -> None:
        """On a connection that has just run LISTEN: hold the channel's lock while it lives, and count."""
        conn.execute("SELECT pg_advisory_lock_shared(%s)", (self.key,))
        self._own += 1
        self._counted_at = 0.0
        self.look(conn)

    @contextmanager
    def held(self, conn: Any) -> Iterator[None]:
        """``listening`` on ``conn`` for the block, ``stopped_listening`` once it ends however it ends."""
        self.listening(conn)
        try:
            yield
        finally:
            self.stopped_listening()

    def stopped_listening(self) -> None:
        """The listening connection is gone (its lock with it): until it listens again, notify."""
        self._own = max(0, self._own - 1)
        if self._own == 0:
            self.others = True

    def look(self, conn: Any) -> None:
        """Count the listeners, unless counted less than ``LOOK_AGAIN`` seconds ago."""
        now = time.monotonic()
        if now - self._counted_at < LOOK_AGAIN:
            return
        unsigned = self.key & 0xFFFF_FFFF_FFFF_FFFF
        (holders,) = conn.execute(_HOLDERS, (unsigned >> 32, unsigned & 0xFFFF_FFFF)).fetchone()
        self.others = holders > self._own
        self._counted_at = now


class _NobodyElse:
    """The audience on a back end without notifications (SQLite): there is nobody else to tell."""

    others = False


NOBODY_ELSE = _NobodyElse()
