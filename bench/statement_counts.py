"""SQL statements and database round trips per lifecycle, counted inside the server.

The server is `bench/counted_serve.py`: `cairn serve` with its database
drivers wrapped to count (see there for what counts as a statement and as
a round trip). Two measurements on one fresh server:

- under the async generator (``concurrency`` lifecycles in flight, as the
  timed figure): everything the server process sends per lifecycle,
  log followers included, and claimWork calls that came back empty;
- one command at a time with the official client: createTask ×n, then
  claimWork ×n, then reportCompleted ×n, each block counted on its own
  after the followers it woke have settled.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
import uuid
from typing import Any

import taskcluster

from bench.lifecycle import Server, definition
from bench.load_figures import _generator

SETTLE_SECONDS = 1.0  # for the log followers woken by the last commands to finish


class CountedServer(Server):
    """A `cairn serve` that counts its statements and round trips."""

    def __init__(self, backend: str):
        super().__init__(backend)
        self.counts_path = self.dir / "counts.json"
        self.settings["CAIRN_BENCH_COUNTS"] = str(self.counts_path)

    def command(self) -> list[str]:
        return [sys.executable, "-m", "bench.counted_serve", "serve", "--port", str(self.port),
                "--workers", str(self.workers)]

    def counts(self) -> dict[str, int]:
        before = self.counts_path.stat().st_mtime_ns if self.counts_path.exists() else 0
        os.kill(self.process.pid, signal.SIGUSR1)
        give_up = time.monotonic() + 10
        while time.monotonic() < give_up:
            if self.counts_path.exists() and self.counts_path.stat().st_mtime_ns != before:
                return json.loads(self.counts_path.read_text())
            time.sleep(0.01)
        raise RuntimeError("the counting server wrote no counts")


def _per(after: dict[str, Any], before: dict[str, Any], n: int) -> dict[str, Any]:
    """Counts per lifecycle (or command); by statement text, the most frequent first."""
    per: dict[str, Any] = {key: (after[key] - before[key]) / n for key in ("statements", "round_trips")}
    texts = after["by_statement"]
    by_text = {t: (texts[t] - before["by_statement"].get(t, 0)) / n for t in texts}
    per["by_statement"] = dict(sorted(((t, c) for t, c in by_text.items() if c), key=lambda tc: -tc[1]))
    return per


def measure(backend: str, lifecycles: int, concurrency: int, each: int = 50) -> dict[str, Any]:
    with CountedServer(backend) as server:
        async def load() -> dict[str, Any]:
            async with _generator(server, concurrency) as generator:
                await generator.run(min(100, lifecycles))
                time.sleep(SETTLE_SECONDS)
                before = server.counts()
                await generator.run(lifecycles)
                time.sleep(SETTLE_SECONDS)
                return _per(server.counts(), before, lifecycles)

        result: dict[str, Any] = {"async_load": asyncio.run(load()), "lifecycles": lifecycles}
        queue = server.client()
        queue_id = f"bench/c{uuid.uuid4().hex[:8]}"
        task_ids = [taskcluster.slugId() for _ in range(each)]
        claimed: list[tuple[str, str]] = []
        claim = {"workerGroup": "bench", "workerId": "w", "tasks": 1}

        def create() -> None:
            for task_id in task_ids:
                queue.createTask(task_id, definition(queue_id))

        def claim_all() -> None:
            for _ in task_ids:
                task = queue.claimWork(queue_id, claim)["tasks"][0]
                claimed.append((task["status"]["taskId"], str(task["runId"])))

        def complete() -> None:
            for task_id, run_id in claimed:
                queue.reportCompleted(task_id, run_id)

        per_command = {}
        for name, step in (("createTask", create), ("claimWork", claim_all), ("reportCompleted", complete)):
            before = server.counts()
            step()
            time.sleep(SETTLE_SECONDS)
            per_command[name] = _per(server.counts(), before, each)
        result["per_command"] = per_command
    return result


def summary(counts: dict[str, Any]) -> str:
    """'statements / round trips per lifecycle (per command: ...)'."""
    a = counts["async_load"]
    parts = ", ".join(f"{name} {c['statements']:.1f}/{c['round_trips']:.1f}"
                      for name, c in counts["per_command"].items())
    return f"{a['statements']:.1f} / {a['round_trips']:.1f} ({parts})"
