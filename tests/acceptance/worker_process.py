"""The reference worker as a subprocess of a test: a real ``cairn worker`` against a live server.

It runs with the standard TASKCLUSTER_* variables and the root client's
credentials, its output in a file of the test's directory. A test module's
``start_worker`` fixture yields :meth:`StartedWorkers.start` and ends with
:meth:`StartedWorkers.terminate`, so no worker outlives its test.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any


class WorkerProcess:
    def __init__(self, server: Any, directory: Path, capacity: int, task_queue: str):
        directory.mkdir()
        self.log_path = directory / "worker.stderr"
        self.work_dir = directory / "work"
        env = dict(os.environ)
        env.update(
            TASKCLUSTER_ROOT_URL=server.root_url,
            TASKCLUSTER_CLIENT_ID="static/root",
            TASKCLUSTER_ACCESS_TOKEN=server.options()["credentials"]["accessToken"],
        )
        cairn = [sys.executable, "-m", "cairn.cli"]
        command = [
            *cairn, "worker", "--task-queue", task_queue,
            "--worker-group", "tests", "--worker-id", "w1", "--capacity", str(capacity),
            "--work-dir", str(self.work_dir),
        ]
        with self.log_path.open("wb") as stderr:
            self.process = subprocess.Popen(command, env=env, stdout=stderr, stderr=stderr)

    def terminate(self, timeout: float = 15) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


class StartedWorkers:
    """The workers one test started, each in its own directory under ``directory``."""

    def __init__(self, server: Any, directory: Path, task_queue: str, capacity: int):
        self.server = server
        self.directory = directory
        self.task_queue = task_queue
        self.capacity = capacity
        self.started: list[WorkerProcess] = []

    def start(self, capacity: int | None = None, task_queue: str | None = None) -> WorkerProcess:
        directory = self.directory / f"worker-{len(self.started)}"
        worker = WorkerProcess(self.server, directory, self.capacity if capacity is None else capacity,
                               task_queue or self.task_queue)
        self.started.append(worker)
        return worker

    def terminate(self) -> None:
        for worker in self.started:
            worker.terminate()
            print(worker.output())  # shown when the test fails
