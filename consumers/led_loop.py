"""An asyncio loop that works only while its process leads: the shape of every
background task that is not a log follower (the notification delivery, the
hooks' RabbitMQ listener).

A subclass gives its ``name`` (the leadership lock's, one holder across the
deployment) and :meth:`LedLoop.work`, which runs while this process leads and
returns to give the lead a chance to be checked again. A failure is logged
and the loop goes on after a pause; :meth:`LedLoop.stop` wakes it, cancels
it and gives up the lead.

:class:`DueLoop` is the led loop over a to-do list of things due at a time
(notifications to send, requests to make to GitHub): a subclass gives
:meth:`DueLoop.deliver_due` and :meth:`DueLoop.next_due`.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod

from starlette.concurrency import run_in_threadpool

from cairn.consumers.leadership import Leadership
from cairn.consumers.log_signal import LogSignal
from cairn.domain.timestamps import parse_time, utcnow

#: Seconds a process that does not lead waits before asking again.
STAND_BY = 2.0
#: Seconds after a failure before the loop tries again.
AFTER_FAILURE = 1.0


class LedLoop(ABC):
    name: str
    logger: logging.Logger

    def __init__(self, signal: LogSignal, conninfo: str | None):
        self.signal = signal
        self.leadership = Leadership(conninfo, self.name)
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @abstractmethod
    async def work(self) -> None:
        """One spell of work while this process leads."""

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name=f"cairn-{self.name}")

    async def stop(self) -> None:
        self._stop.set()
        self.signal.bump()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
        self.leadership.release()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    async def run(self) -> None:
        while not self._stop.is_set():
            try:
                if not await run_in_threadpool(self.leadership.held):
                    await self.pause(STAND_BY)
                    continue
                await self.work()
            except asyncio.CancelledError:
                raise
            except Exception:
                self.logger.warning("%s interrupted; resuming", self.name, exc_info=True)
                await self.pause(AFTER_FAILURE)

    async def pause(self, seconds: float) -> None:
        """Sleep ``seconds``, or less if the loop is stopped meanwhile."""
        try:
            await asyncio.wait_for(self._stop.wait(), seconds)
        except TimeoutError:
            pass


class DueLoop(LedLoop):
    """Works what is due, a batch at a time, then waits for a commit or for the next thing due.

    A commit anywhere in the process (or, on PostgreSQL, in any process)
    wakes it; without one it looks again within ``idle_wait`` seconds, and
    when the next retry is due.
    """

    def __init__(self, signal: LogSignal, conninfo: str | None, *, batch: int = 50, idle_wait: float = 1.0,
                 coalesce: float = 0.02):
        self.batch = batch
        self.idle_wait = idle_wait
        self.coalesce = coalesce
        super().__init__(signal, conninfo)

    @abstractmethod
    async def deliver_due(self) -> int:
        """Work one batch of what is due; returns how many were due."""

    @abstractmethod
    def next_due(self) -> str | None:
        """When the next thing is due (an ISO time), or None when nothing waits; called in a thread."""

    async def work(self) -> None:
        seen = self.signal.generation
        if await self.deliver_due() < self.batch:
            await run_in_threadpool(self.signal.wait, seen, await self._until_next_due())
            # Every commit wakes the loop: a busy log is read a few
            # dozen times a second at most, not once per commit.
            await self.pause(self.coalesce)

    async def _until_next_due(self) -> float:
        due = await run_in_threadpool(self.next_due)
        if due is None:
            return self.idle_wait
        return max(0.01, min(self.idle_wait, (parse_time(due) - utcnow()).total_seconds()))
