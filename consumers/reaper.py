"""Time-driven changes: lapsed claims, passed deadlines, expired tasks.

Every ``interval`` seconds the reaper asks the views what is due and issues
the matching command for each — recorded as events like any other, caused by
the client id ``cairn/reaper``. On PostgreSQL one process at a time leads
the reaper (an advisory lock, as for the log followers); should two ever
reap at once, each command re-checks the aggregate, so the second one finds
nothing to do.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from starlette.concurrency import run_in_threadpool

from cairn.consumers.leadership import Leadership
from cairn.domain.aggregate import acting_as
from cairn.domain.timestamps import iso, utcnow

log = logging.getLogger("cairn.reaper")

NAME = "reaper"
ACTOR = "cairn/reaper"
BATCH = 500


class Reaper:
    name = NAME

    def __init__(self, queue: Any, reads: Any, interval: float, conninfo: str | None = None):
        self.queue = queue
        self.reads = reads
        self.interval = interval
        self.leadership = Leadership(conninfo, NAME)
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
        await run_in_threadpool(self.leadership.release)

    async def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                if await run_in_threadpool(self.leadership.held):
                    await run_in_threadpool(self.reap_once)
            except Exception:
                log.exception("reaping failed; will try again")
            try:
                await asyncio.wait_for(self._stop.wait(), self.interval)
            except asyncio.TimeoutError:
                pass

    def reap_once(self) -> int:
        """Issue every due time-driven command once; returns how many.

        One command that fails (or one pass) does not hold back the others:
        it is logged, and tried again on the next round.
        """
        done = 0
        with acting_as(ACTOR):
            now = utcnow()
            for task_id, run_id in self.reads.expired_claims(iso(now), BATCH):
                done += self._issue(self.queue.expire_claim, task_id, run_id, now)
            for task_id in self.reads.past_deadline(iso(now), BATCH):
                done += self._issue(self.queue.exceed_deadline, task_id, now)
            for task_id in self.reads.past_expiry(iso(now), BATCH):
                done += self._issue(self.queue.expire_task, task_id)
            for reap in self.passes:
                try:
                    done += reap(now)
                except Exception:
                    log.exception("the reaper's pass %r failed; will try again", reap)
        return done

    def _issue(self, command: Callable[..., Any], *args: Any) -> int:
        try:
            command(*args)
        except Exception:
            log.exception("%s%r failed; will try again", command.__name__, args)
            return 0
        return 1
