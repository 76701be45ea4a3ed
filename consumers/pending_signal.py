"""Waking claimWork the moment work arrives.

Every task queue has a generation number that goes up whenever a run becomes
pending on it. A claimWork call reads the generation *before* it looks for
work and, finding none, waits for the number to move — so a run that becomes
pending between the look and the wait is never missed.

In one process the queue views bump the generation after their commit. With
PostgreSQL, other processes' commits arrive by ``LISTEN cairn_pending``; a
listener that loses its connection reconnects, and waiters re-check on a
fallback timeout, so a lost notification delays work but never strands it.
A listener that reconnects wakes every waiter, for what it may have missed.

A notification's payload is the sending process's token, a space and the
task queue (a bare task queue is taken as another process's: task queue ids
hold no spaces). The listener passes over its own process's: the queue
views woke those waiters at the commit already, and waking them again cost
the listener's thread and the event loop a hand-over of the GIL each.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable
from contextlib import nullcontext

import psycopg

from cairn.projections.store.notify_audience import LOOK_AGAIN, Audience

log = logging.getLogger("cairn.pending")

FALLBACK_RECHECK = 5.0
#: The channel of pending work (``projections/queue/queue_queries.sql``, ``notify_pending``).
CHANNEL = "cairn_pending"


class PendingSignal:
    def __init__(self) -> None:
        self._generations: dict[str, int] = defaultdict(int)
        self._waiters: dict[str, set[asyncio.Future[None]]] = defaultdict(set)
        self._watchers: list[Callable[[list[str]], None]] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._listener: threading.Thread | None = None
        self._stopping = threading.Event()

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def generation(self, task_queue_id: str) -> int:
        return self._generations[task_queue_id]

    def waiting(self) -> int:
        """How many claimWork calls are waiting for work now."""
        return sum(len(waiters) for waiters in list(self._waiters.values()))

    def notify(self, task_queue_ids: Iterable[str]) -> None:
        """Thread-safe: work arrived on these queues."""
        with self._lock:
            for queue in task_queue_ids:
                self._generations[queue] += 1
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake, list(task_queue_ids))

    def notify_all(self) -> None:
        """Thread-safe: work may have arrived on any queue."""
        self.notify(list(self._generations))

    def watch(self, callback: Callable[[list[str]], None]) -> None:
        """Call ``callback(task_queue_ids)`` on the event loop whenever work may have arrived on them.

        For Cairn's own workers (the built-in workers): they are not claimWork calls, and are
        not counted as waiting ones.
        """
        self._watchers.append(callback)

    def _wake(self, task_queue_ids: list[str]) -> None:
        for watcher in self._watchers:
            watcher(task_queue_ids)
        for queue in task_queue_ids:
            for waiter in self._waiters.pop(queue, set()):
                if not waiter.done():
                    waiter.set_result(None)

    async def wait(self, task_queue_id: str, seen: int, timeout: float) -> None:
        """Return when the queue's generation passes ``seen``, or after ``timeout``."""
        if self._generations[task_queue_id] != seen or timeout <= 0:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters[task_queue_id].add(waiter)
        try:
            await asyncio.wait_for(asyncio.shield(waiter), min(timeout, FALLBACK_RECHECK))
        except asyncio.TimeoutError:
            pass
        finally:
            self._waiters[task_queue_id].discard(waiter)

    # PostgreSQL

    def listen(self, conninfo: str, own: str | None = None, audience: Audience | None = None) -> None:
        """Wake the waiters of every queue notified on ``cairn_pending``, but for those sent by ``own``;
        tell ``audience`` whether other processes listen too (``notify_audience.py``)."""
        self._listener = threading.Thread(
            target=self._listen, args=(conninfo, own, audience), daemon=True, name="cairn-listen"
        )
        self._listener.start()

    def stop(self) -> None:
        self._stopping.set()

    def _listen(self, conninfo: str, own: str | None, audience: Audience | None) -> None:
        while not self._stopping.is_set():
            try:
                with psycopg.connect(conninfo, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    with audience.held(conn) if audience is not None else nullcontext():
                        # What was sent while nobody listened is lost: every waiter looks again.
                        self.notify_all()
                        while not self._stopping.is_set():
                            for note in conn.notifies(timeout=LOOK_AGAIN, stop_after=256):
                                sender, _, queue = note.payload.rpartition(" ")
                                if own is None or sender != own:
                                    self.notify([queue])
                            if audience is not None:
                                audience.look(conn)
            except psycopg.Error:
                log.warning("lost the pending-work listener; reconnecting", exc_info=True)
                self._stopping.wait(1.0)
