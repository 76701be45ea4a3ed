"""createTask → the task's first log line, read through the server, with a real ``cairn worker``.

One task at a time: the clock starts before createTask; the reader then
polls ``public/logs/live.log`` (every 10 ms) until the worker has pointed
it at the live log on Cairn, follows that URL, and stops the clock at the
first complete line. So the figure holds the dispatch to the worker, the
worker opening the log with Cairn and writing its first line, the append,
and a reader on the server picking it up.

Run by ``make bench`` (the figure "createTask → first log line"), or alone:
``python -m bench.live_log_latency --backend postgres --samples 50``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from typing import Any

import httpx
import taskcluster
from taskcluster.exceptions import TaskclusterRestFailure

from bench import lifecycle

LIVE_LOG = "public/logs/live.log"


def _live_log_url(queue: Any, task_id: str, give_up: float) -> str:
    while time.monotonic() < give_up:
        try:
            found = queue.artifact(task_id, "0", LIVE_LOG)
            if found["storageType"] == "reference":
                return found["url"]
        except TaskclusterRestFailure as e:
            if e.status_code != 404:
                raise
        time.sleep(0.01)
    raise TimeoutError(f"task {task_id} has no live log")


def _first_line(url: str) -> bytes:
    with httpx.stream("GET", url, timeout=30) as response:
        seen = b""
        for chunk in response.iter_bytes():
            seen += chunk
            if b"\n" in seen:
                return seen.split(b"\n", 1)[0]
    raise RuntimeError("the live log ended without a line")


def first_line_latency(server: lifecycle.Server, samples: int) -> list[float]:
    """Seconds from createTask to the first log line through the server, ``samples`` times (after 3 to warm up)."""
    queue = server.client()
    queue_id = f"bench/log{uuid.uuid4().hex[:8]}"
    env = dict(os.environ, TASKCLUSTER_ROOT_URL=server.root_url, TASKCLUSTER_CLIENT_ID="static/root",
               TASKCLUSTER_ACCESS_TOKEN=server.token, CAIRN_LOG_LEVEL="warning")
    work = tempfile.mkdtemp(prefix="cairn-bench-worker-")
    worker = subprocess.Popen(
        [sys.executable, "-m", "cairn.cli", "worker", "--task-queue", queue_id, "--work-dir", work,
         "--worker-group", "bench", "--worker-id", "log-latency"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    times: list[float] = []
    try:
        for n in range(samples + 3):
            task_id = taskcluster.slugId()
            started = time.perf_counter()
            queue.createTask(task_id, lifecycle.definition(queue_id, payload={"command": "echo hello"}))
            line = _first_line(_live_log_url(queue, task_id, time.monotonic() + 60))
            elapsed = time.perf_counter() - started
            if task_id.encode() not in line:
                raise RuntimeError(f"unexpected first line {line!r}")
            if n >= 3:
                times.append(elapsed)
            _wait_resolved(queue, task_id)
    finally:
        worker.terminate()
        worker.wait(30)
    return times


def _wait_resolved(queue: Any, task_id: str) -> None:
    give_up = time.monotonic() + 60
    while queue.status(task_id)["status"]["state"] not in ("completed", "failed", "exception"):
        if time.monotonic() > give_up:
            raise TimeoutError(f"task {task_id} did not resolve")
        time.sleep(0.02)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.live_log_latency", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--server-workers", type=int, default=1, help="server processes (PostgreSQL only)")
    args = parser.parse_args()
    with lifecycle.Server(args.backend, workers=args.server_workers) as server:
        figures = lifecycle.percentiles(first_line_latency(server, args.samples))
    print(f"createTask → first log line through the server, {args.backend}, {args.samples} tasks: "
          f"p50 {figures['p50_ms']:.0f} ms, p99 {figures['p99_ms']:.0f} ms")


if __name__ == "__main__":
    main()
