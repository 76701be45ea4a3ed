"""``features.resourceMonitor``: the system's memory while a run's commands run, reported in its log.

As generic-worker's resource monitor reports it (on by default): the peak
and average memory in use, the average memory available, and the total,
sampled with psutil twice a second from the first command to the end of the
last. generic-worker can also abort a task that keeps memory nearly
exhausted, with thresholds from its own configuration; this worker has no
such thresholds and only reports.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import psutil

INTERVAL = 0.5


def _size(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.1f} {unit}" if unit != "B" else f"{int(count)} B"
        count /= 1024
    raise AssertionError("unreachable")


class MemorySamples:
    def __init__(self) -> None:
        self.used: list[int] = []
        self.available: list[int] = []
        self.total = 0

    def take(self) -> None:
        memory = psutil.virtual_memory()
        self.used.append(memory.total - memory.available)
        self.available.append(memory.available)
        self.total = memory.total

    def summary(self) -> str:
        used, available = self.used, self.available
        return (
            f"Resource monitor: peak system memory used {_size(max(used))}, average {_size(sum(used) / len(used))}; "
            f"average available {_size(sum(available) / len(available))}; total {_size(self.total)} "
            f"({len(used)} samples)"
        )


@contextlib.asynccontextmanager
async def monitored(payload: dict[str, Any], say: Callable[[str], None]) -> AsyncIterator[None]:
    """Sample while the block runs, and report when it ends (unless the feature is turned off)."""
    if not payload.get("features", {}).get("resourceMonitor", True):
        yield
        return
    samples = MemorySamples()

    async def sample() -> None:
        while True:
            samples.take()
            await asyncio.sleep(INTERVAL)

    sampling = asyncio.create_task(sample())
    try:
        yield
    finally:
        sampling.cancel()
        await asyncio.wait([sampling])
        samples.take()
        say(samples.summary())
