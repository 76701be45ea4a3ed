"""What the relay service's handlers may use, and nothing else."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class Wakeups:
    """Wakes this process's waiters on a key (a live log, a shell session) when it has news.

    Only within one process: waiters elsewhere find the news when they next poll.
    """

    def __init__(self) -> None:
        self._events: dict[Any, asyncio.Event] = {}

    def wake(self, key: Any) -> None:
        event = self._events.pop(key, None)
        if event is not None:
            event.set()

    async def wait(self, key: Any, timeout: float) -> None:
        event = self._events.setdefault(key, asyncio.Event())
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            pass


@dataclass(frozen=True)
class RelayContext:
    #: cairn.projections.relay.live_logs.LiveLogStore
    logs: Any
    #: cairn.projections.relay.shell_sessions.ShellStore
    shells: Any
    #: The state of a run (``pending``, ``running``, ...), None when there is no such run.
    run_state: Callable[[str, int], str | None]
    root_url: str
    wakeups: Wakeups = field(default_factory=Wakeups)
