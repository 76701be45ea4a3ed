"""A process-wide "the log moved" signal, for followers that wait for new events.

Commits in this process bump it directly. On PostgreSQL a listener also
bumps it on the library's NOTIFY after every insert by any process; waiters
always wait with a timeout, so a lost notification costs a delay, never a
stall. Under load those notifications come hundreds a second, one per
commit: the listener bumps at most once per ``COALESCE`` seconds for all
that came meanwhile. This process's own commits have bumped already: their
notifications carry this process's token (``own``) and wake nobody again.
"""

from __future__ import annotations

import logging
import threading
from contextlib import nullcontext

import psycopg

from cairn.projections.store.notify_audience import LOOK_AGAIN, Audience

log = logging.getLogger("cairn.log_signal")

COALESCE = 0.005


class LogSignal:
    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._generation = 0
        self._stopping = threading.Event()

    @property
    def generation(self) -> int:
        return self._generation

    def bump(self) -> None:
        with self._condition:
            self._generation += 1
            self._condition.notify_all()

    def wait(self, seen: int, timeout: float) -> None:
        """Block until the generation passes ``seen`` or ``timeout`` elapses."""
        with self._condition:
            self._condition.wait_for(lambda: self._generation != seen or self._stopping.is_set(), timeout)

    def listen(self, conninfo: str, channel: str = "cairn_events", own: str | None = None,
               audience: Audience | None = None) -> None:
        """Bump on every notification on ``channel`` but those whose payload is ``own``; tell
        ``audience`` whether other processes listen too (``notify_audience.py``)."""
        threading.Thread(
            target=self._listen, args=(conninfo, channel, own, audience), daemon=True, name="cairn-log-listen"
        ).start()

    def stop(self) -> None:
        self._stopping.set()
        self.bump()

    def _listen(self, conninfo: str, channel: str, own: str | None, audience: Audience | None) -> None:
        while not self._stopping.is_set():
            try:
                with psycopg.connect(conninfo, autocommit=True) as conn:
                    conn.execute(f'LISTEN "{channel}"')
                    with audience.held(conn) if audience is not None else nullcontext():
                        self.bump()  # for whatever was committed while nobody listened
                        while not self._stopping.is_set():
                            first = list(conn.notifies(timeout=LOOK_AGAIN, stop_after=1))
                            if first:
                                self._stopping.wait(COALESCE)
                                came = first + list(conn.notifies(timeout=0))  # and those that came meanwhile
                                if own is None or any(note.payload != own for note in came):
                                    self.bump()
                            if audience is not None:
                                audience.look(conn)
            except psycopg.Error:
                log.warning("lost the log listener; reconnecting", exc_info=True)
                self._stopping.wait(1.0)
