"""From cancelTask to the task's process gone, with a real `cairn serve` and a real `cairn worker`.

``python -m bench.cancel_latency --cancels 30 --backend sqlite`` starts a
server on a fresh database and one worker; then, one task at a time, creates
a task that writes its shell's pid and sleeps, waits until it runs, cancels
it and times how long until that process is dead (gone, or a zombie: killed
and not yet reaped). The claim lasts 20 minutes, so a reclaim cannot be what
stops it: the figure is the event stream's path. Prints p50, p99 and max,
and the same as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import taskcluster

from bench.lifecycle import Server, definition


def dead(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False


def wait(check, timeout: float, what: str, interval: float = 0.001):
    give_up = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > give_up:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(interval)
    return value


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))]


def measure(backend: str, cancels: int) -> dict[str, float]:
    with Server(backend, settings={"CAIRN_CLAIM_TIMEOUT": "1200"}) as server, \
            tempfile.TemporaryDirectory(prefix="cairn-cancel-") as scratch:
        queue = server.client()
        task_queue = f"bench/cancel-{uuid.uuid4().hex[:8]}"
        env = dict(os.environ, TASKCLUSTER_ROOT_URL=server.root_url, TASKCLUSTER_CLIENT_ID="static/root",
                   TASKCLUSTER_ACCESS_TOKEN=server.token)
        worker = subprocess.Popen(
            [sys.executable, "-m", "cairn.cli", "worker", "--task-queue", task_queue, "--worker-group", "bench",
             "--worker-id", "cancel", "--work-dir", str(Path(scratch) / "work")],
            env=env, stderr=open(Path(scratch) / "worker.log", "wb"),
        )
        took: list[float] = []
        try:
            for n in range(cancels):
                pid_file = Path(scratch) / f"task-{n}.pid"
                task_id = taskcluster.slugId()
                queue.createTask(task_id, definition(task_queue, payload={
                    "command": f"echo $$ > {pid_file}.tmp && mv {pid_file}.tmp {pid_file}; exec sleep 600",
                    "maxRunTime": 900,
                }))
                pid = int(wait(lambda: pid_file.exists() and pid_file.read_text().strip(), 60, "the task to run"))
                queue.cancelTask(task_id)
                cancelled = time.perf_counter()
                wait(lambda: dead(pid), 60, f"process {pid} to die")
                took.append(time.perf_counter() - cancelled)
                print(f"cancel {n + 1}/{cancels}: process gone after {took[-1] * 1000:.0f} ms", file=sys.stderr)
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(60)
    return {
        "backend": backend,
        "cancels": len(took),
        "p50_ms": percentile(took, 0.50) * 1000,
        "p99_ms": percentile(took, 0.99) * 1000,
        "max_ms": max(took) * 1000,
        "mean_ms": statistics.fmean(took) * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cancels", type=int, default=30)
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    args = parser.parse_args()
    figures = measure(args.backend, args.cancels)
    print(f"cancel → process gone ({figures['backend']}, {figures['cancels']} cancels): "
          f"p50 {figures['p50_ms']:.0f} ms, p99 {figures['p99_ms']:.0f} ms, max {figures['max_ms']:.0f} ms")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
