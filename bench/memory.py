"""Server memory against the number of tasks it has run: RSS at checkpoints while the async generator runs.

A fresh server runs ``tasks`` lifecycles; at each checkpoint (1k, 2k, 5k,
10k, ... and the last) the load pauses for the reading of VmRSS over the
server's process tree. Growth is measured from the third checkpoint (5k)
to the last, so start-up and warm-up (imports, caches, the pool's
connections, the allocator's first arenas) do not count: a server whose
memory does not depend on the number of tasks stays flat from there on.

Every cache in the server is bounded, by count or by time. The largest is
the Hawk nonce store (250,000 nonces, 44 MiB, or 30 minutes of requests);
it would take 80,000 tasks to fill, so this figure runs the server with
``CAIRN_HAWK_NONCES=3000`` and what grows past the warm-up is everything else. The rate of each segment is kept too, showing whether
throughput falls as the tables grow.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any

from bench.lifecycle import Server
from bench.load import LoadGenerator

MIB = 1024 * 1024
NONCES = 3000


def checkpoints(tasks: int) -> list[int]:
    """1k, 2k, 5k, 10k, 20k, 50k, ... below ``tasks``, then ``tasks``."""
    found, scale = [], 1000
    while scale < tasks:
        found.extend(n for n in (scale, 2 * scale, 5 * scale) if n < tasks)
        scale *= 10
    return [*found, tasks]


def run(backend: str, tasks: int, concurrency: int, say: Callable[[str], None]) -> dict[str, Any]:
    marks: list[dict[str, Any]] = []
    with Server(backend, settings={"CAIRN_HAWK_NONCES": str(NONCES)}) as server:
        started_rss = server.rss_bytes()

        async def go() -> None:
            done = 0
            queue_id = f"bench/m{uuid.uuid4().hex[:8]}"
            async with LoadGenerator(server.root_url, "static/root", server.token, queue_id, concurrency) as generator:
                for mark in checkpoints(tasks):
                    segment = await generator.run(mark - done)
                    done = mark
                    rss = server.rss_bytes()
                    marks.append({"tasks": mark, "rss_mib": rss / MIB, "lifecycles_per_s": segment.per_second})
                    say(f"{backend}: RSS {rss / MIB:.1f} MiB after {mark:,} tasks ({segment.per_second:.0f}/s)")

        began = time.perf_counter()
        asyncio.run(go())
        seconds = time.perf_counter() - began
    first, last = marks[2 if len(marks) > 3 else 0], marks[-1]
    span = last["tasks"] - first["tasks"]
    growth = (last["rss_mib"] - first["rss_mib"]) / span * 10_000 if span else 0.0
    return {
        "tasks": tasks,
        "seconds": seconds,
        "rss_at_start_mib": started_rss / MIB,
        "checkpoints": marks,
        "growth_from_tasks": first["tasks"],
        "growth_mib_per_10k_tasks": growth,
    }
