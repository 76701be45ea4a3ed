"""The built-in workers at work: ``built-in/succeed`` and ``built-in/fail`` tasks resolved as they become pending.

One loop works both task queues (``domain/queue/built_in_workers.py`` has
the rule). It looks for pending runs, resolves each with one command that
claims and reports it in the same commit, and when there are none waits on
the queues' pending signal — the one that wakes ``claimWork``, fed by this
process's commits and, on PostgreSQL, by every other process's through
``LISTEN``; watched, not counted as a waiting claimWork — with a fallback re-check, so a lost wake-up delays work but
never strands it. Nothing is held in memory: pending runs stay in the
pending queue until the commit that resolves them, so a restart, or a
stand-by taking the lead on PostgreSQL, finds them all where they were.
The events are caused by ``cairn/built-in-workers``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from starlette.concurrency import run_in_threadpool

from cairn.consumers.leadership import Leadership
from cairn.domain.aggregate import acting_as
from cairn.domain.queue.built_in_workers import QUEUES, WORKER_GROUP, outcome
from cairn.domain.timestamps import utcnow

log = logging.getLogger("cairn.built_in_workers")

NAME = "built-in-workers"
ACTOR = "cairn/built-in-workers"
#: Runs resolved before the loop looks at its signals again.
BATCH = 100
#: Seconds between re-checks when no wake-up came, and between bids for the lead.
RECHECK = 5.0
#: Longest back-off after failures.
MAX_BACKOFF = 30.0


class BuiltInWorkers:
    name = NAME

    def __init__(self, queue: Any, pending: Any, conninfo: str | None = None):
        self.queue = queue
        self.pending = pending
        self.leadership = Leadership(conninfo, NAME)
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._arrived = asyncio.Event()

    def start(self) -> None:
        self.pending.watch(self._wake)
        self._task = asyncio.create_task(self._loop(), name="cairn-built-in-workers")

    def _wake(self, task_queue_ids: list[str]) -> None:
        if any(queue in QUEUES for queue in task_queue_ids):
            self._arrived.set()

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task
        await run_in_threadpool(self.leadership.release)

    async def _loop(self) -> None:
        failures = 0
        while not self._stop.is_set():
            delay = RECHECK
            # Cleared before looking: work that arrives meanwhile sets it again.
            self._arrived.clear()
            try:
                if await run_in_threadpool(self.leadership.held):
                    if await run_in_threadpool(self.work_once) >= BATCH:
                        continue
                    await self._until_pending()
                    failures = 0
                    continue
            except Exception:
                failures += 1
                delay = min(2.0 ** failures, MAX_BACKOFF)
                log.exception("the built-in workers failed; trying again in %.0f s", delay)
            try:
                await asyncio.wait_for(self._stop.wait(), delay)
            except asyncio.TimeoutError:
                pass

    async def _until_pending(self) -> None:
        """Return when work may have arrived on a built-in queue, when stopping, or after RECHECK."""
        waits = [asyncio.ensure_future(self._arrived.wait()), asyncio.ensure_future(self._stop.wait())]
        try:
            await asyncio.wait(waits, timeout=RECHECK, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()

    def work_once(self) -> int:
        """Resolve up to BATCH pending runs of the built-in queues; returns how many."""
        done = 0
        with acting_as(ACTOR):
            for task_queue_id, (worker_id, _) in QUEUES.items():
                while done < BATCH:
                    resolved = self.queue.claim_and_resolve(
                        task_queue_id, WORKER_GROUP, worker_id,
                        lambda task, q=task_queue_id: outcome(q, task.definition.get("payload")), utcnow(),
                    )
                    if resolved is None:
                        break
                    task, run_id = resolved
                    log.info("%s: task %s run %d resolved as %s", task_queue_id, task.task_id, run_id,
                             task.run(run_id)["state"])
                    done += 1
        return done
