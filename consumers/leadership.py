"""Electing one leader per named consumer among several Cairn processes (PostgreSQL).

The leader holds a session-level advisory lock on its own connection; when
the process dies the connection goes, the lock with it, and a stand-by takes
over on its next try.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import psycopg

log = logging.getLogger("cairn.leadership")

LOCK_SPACE = 7321100
VERIFY_EVERY = 5.0


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
            # so the lock is verified with one cheap check every few seconds.
            if not self._conn.closed and not self._conn.broken and time.monotonic() < self._verify_at:
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
