"""Lifecycles/s and CPU per lifecycle under the async load generator, and a py-spy profile of the server.

The server's CPU is its whole process tree's; the generator's is this
process's own (nothing else runs in it meanwhile); on PostgreSQL, the
database's is that of the backends serving this server's database (sampled
twice a second, so a backend that comes and goes between samples is missed);
the machine's busy time covers all of these and whatever else the machine
was doing (the rest). On a
machine with few cores the generator and the server share them, so the
generator's share is reported next to the rate: if server + generator +
database fill every core, the rate is the machine's, not the server's.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from bench import procstat
from bench.lifecycle import Server
from bench.load import LoadGenerator


def _generator(server: Server, concurrency: int) -> LoadGenerator:
    return LoadGenerator(server.root_url, "static/root", server.token, f"bench/g{uuid.uuid4().hex[:8]}", concurrency)


class DatabaseCpu:
    """CPU of the PostgreSQL backends serving one database, over a stretch of time."""

    def __init__(self, database: str):
        self.marker = f" {database} "  # "postgres: 15/main: postgres <database> 127.0.0.1(port) idle"
        self.first = procstat.cpu_by_command_line(self.marker)
        self.last = dict(self.first)

    def sample(self) -> None:
        self.last.update(procstat.cpu_by_command_line(self.marker))

    async def follow(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            self.sample()

    def seconds(self) -> float:
        return sum(cpu - self.first.get(pid, 0.0) for pid, cpu in self.last.items())


def request_floor(server: Server, requests: int, concurrency: int) -> dict[str, float]:
    """Server CPU per authenticated request that changes nothing (``auth.currentScopes``), under the same load."""
    m = measure(server, requests, concurrency, unit="current_scopes")
    return {"requests": requests, "requests_per_s": m["lifecycles_per_s"],
            "server_cpu_ms_per_request": m["server_cpu_ms_per_lifecycle"]}


def measure(server: Server, lifecycles: int, concurrency: int, warmup: int = 200,
            unit: str = "lifecycle") -> dict[str, Any]:
    """The figures of ``lifecycles`` lifecycles (or calls of the generator's method ``unit``)."""
    async def go() -> dict[str, Any]:
        async with _generator(server, concurrency) as generator:
            await generator.run(warmup, unit)
            pid = server.process.pid
            database = DatabaseCpu(server.database) if server.database else None
            follower = asyncio.create_task(database.follow()) if database else None
            switches = procstat.tree_context_switches(pid)
            cpu, own = procstat.tree_cpu_seconds(pid), procstat.own_cpu_seconds()
            machine = procstat.machine_busy_seconds()
            segment = await generator.run(lifecycles, unit)
            cpu = procstat.tree_cpu_seconds(pid) - cpu
            switches = [after - before for after, before in zip(procstat.tree_context_switches(pid), switches)]
            own = procstat.own_cpu_seconds() - own
            machine = procstat.machine_busy_seconds() - machine
            if database:
                follower.cancel()
                database.sample()
        latencies = sorted(segment.latencies)
        shares = {}
        if database:
            shares = {"database_cpu_ms_per_lifecycle": database.seconds() / lifecycles * 1000,
                      "database_cores_busy": database.seconds() / segment.seconds}
            machine -= database.seconds()
        return {**shares,
            "concurrency": concurrency,
            "lifecycles": lifecycles,
            "seconds": segment.seconds,
            "lifecycles_per_s": segment.per_second,
            "lifecycle_p50_ms": statistics.median(latencies) * 1000,
            "lifecycle_p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
            "server_cpu_ms_per_lifecycle": cpu / lifecycles * 1000,
            "server_voluntary_switches_per_lifecycle": switches[0] / lifecycles,
            "server_involuntary_switches_per_lifecycle": switches[1] / lifecycles,
            "generator_cpu_ms_per_lifecycle": own / lifecycles * 1000,
            "server_cores_busy": cpu / segment.seconds,
            "generator_cores_busy": own / segment.seconds,
            "rest_cores_busy": max(machine - cpu - own, 0.0) / segment.seconds,
            "machine_cores": procstat.cores(),
        }

    return asyncio.run(go())


def py_spy() -> str | None:
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


def profile(server: Server, lifecycles: int, concurrency: int, path: Path) -> Path:
    """Record the server with py-spy (speedscope format) while the generator runs ``lifecycles``.

    ``--nonblocking``: sampling without pausing the server keeps its speed
    (pausing a process with dozens of threads 100 times a second halves it),
    at the price of an occasional torn stack. ``--gil``: only the thread
    holding the GIL is sampled, so the profile shows where the Python CPU
    goes, not the threads idling in a pool or waiting on a socket.
    """
    spy = py_spy()
    if spy is None:
        raise RuntimeError("py-spy is not installed: .venv/bin/pip install py-spy")
    recorder = subprocess.Popen(
        [spy, "record", "--pid", str(server.process.pid), "--subprocesses", "--format", "speedscope",
         "--nonblocking", "--gil", "--output", str(path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    time.sleep(1)  # py-spy attaches before the load starts

    async def go() -> None:
        async with _generator(server, concurrency) as generator:
            await generator.run(lifecycles)

    try:
        asyncio.run(go())
    finally:
        recorder.send_signal(signal.SIGINT)
        _, errors = recorder.communicate(timeout=60)
    if not path.exists():
        raise RuntimeError(f"py-spy wrote no profile: {errors.decode()[-500:]}")
    return path
