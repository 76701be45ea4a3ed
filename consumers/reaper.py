"""Time-driven changes: lapsed claims, passed deadlines, expired tasks.

Every ``interval`` seconds the reaper asks the views what is due and issues
the matching command for each — recorded as events like any other, caused by
the client id ``cairn/reaper``. Several processes may reap at once: each
command re-checks the aggregate, so the second one finds nothing to do.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from starlette.concurrency import run_in_threadpool

from cairn.domain.aggregate import acting_as
from cairn.domain.timestamps import iso, utcnow

log = logging.getLogger("cairn.reaper")

ACTOR = "cairn/reaper"
BATCH = 500


class Reaper:
    def __init__(self, queue: Any, reads: Any, interval: float):
        self.queue = queue
        self.reads = reads
        self.interval = interval
        self._task: asyncio.Task[None] | None = None
        #: More time-driven passes, each ``pass(now) -> commands issued`` (artifact and object expiry).
        self.passes: list[Callable[[datetime], int]] = []
        self._stop = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="cairn-reaper")

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task

    async def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                await run_in_threadpool(self.reap_once)
            except Exception:
                log.exception("reaping failed; will try again")
            try:
                await asyncio.wait_for(self._stop.wait(), self.interval)
            except asyncio.TimeoutError:
                pass

    def reap_once(self) -> int:
        """Issue every due time-driven command once; returns how many."""
        done = 0
        with acting_as(ACTOR):
            now = utcnow()
            for task_id, run_id in self.reads.expired_claims(iso(now), BATCH):
                self.queue.expire_claim(task_id, run_id, now)
                done += 1
            for task_id in self.reads.past_deadline(iso(now), BATCH):
                self.queue.exceed_deadline(task_id, now)
                done += 1
            for task_id in self.reads.past_expiry(iso(now), BATCH):
                self.queue.expire_task(task_id)
                done += 1
            for reap in self.passes:
                done += reap(now)
        return done
