"""Electing one leader per named consumer among several Cairn processes (PostgreSQL).

The leader holds a session-level advisory lock on its own connection; when
the process dies the connection goes, the lock with it, and a stand-by takes
over on its next try. When the database restarts, every lock goes with it:
the old leader sees its session ended before it acts again, so two
processes do not both lead (and, for the Pulse publisher, publish twice).
"""

from __future__ import annotations

import logging
import select
import time
from typing import Any

import psycopg

log = logging.getLogger("cairn.leadership")

LOCK_SPACE = 7321100
VERIFY_EVERY = 5.0


def _server_spoke(conn: psycopg.Connection[Any]) -> bool:
    """Whether anything has arrived on the connection's socket since its last statement."""
    poller = select.poll()
    try:
        poller.register(conn.fileno(), select.POLLIN)
    except (OSError, ValueError, psycopg.Error):
        return True
    return bool(poller.poll(0))


class Leadership:
    def __init__(self, conninfo: str | None, name: str):
        self.conninfo = conninfo
        self.name = name
        self._conn: psycopg.Connection[Any] | None = None
        self._verify_at = 0.0

    def held(self) -> bool:
        """Try to lead (or keep leading); True while this process leads."""
        if self.conninfo is None:
            return True
        if self._conn is not None:
            # A lost connection shows as broken once a statement fails on it,
            # so the lock is verified with one cheap check every few seconds,
            # and at once when the server has spoken on the idle session: what
            # it sends unasked is its goodbye (a restart, a terminated backend),
            # after which another process may already have taken the lock.
            if (
                not self._conn.closed
                and not self._conn.broken
                and time.monotonic() < self._verify_at
                and not _server_spoke(self._conn)
            ):
                return True
            try:
                self._conn.execute("SELECT 1")
                self._verify_at = time.monotonic() + VERIFY_EVERY
                return True
            except psycopg.Error:
                self._conn.close()
                self._conn = None
        try:
            conn = psycopg.connect(self.conninfo, autocommit=True)
            row = conn.execute("SELECT pg_try_advisory_lock(%s, hashtext(%s))", (LOCK_SPACE, self.name)).fetchone()
        except psycopg.Error:
            log.warning("cannot reach the database to lead %s", self.name, exc_info=True)
            return False
        if not row or not row[0]:
            conn.close()
            return False
        self._conn = conn
        self._verify_at = time.monotonic() + VERIFY_EVERY
        log.info("this process now leads %s", self.name)
        return True

    def release(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
