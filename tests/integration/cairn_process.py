"""`cairn serve` as a subprocess on a loopback port, and a mixed load of official clients against it."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import taskcluster

from tests.acceptance.queue_helpers import task_definition
from tests.conftest import ROOT_TOKEN, SECRET_KEY


def start_server(
    database_url: str, data_dir: Path, port: int, serve_args: Sequence[str] = (),
    command: Sequence[str] = ("serve",), **settings: str,
) -> subprocess.Popen:
    """Start ``cairn serve [serve_args]`` and return once it answers a ping; claims last 2 s unless told otherwise.

    ``command`` replaces ``serve``: ``("run", "web")`` serves HTTP with no background process.
    """
    env = dict(os.environ)
    env.update(
        CAIRN_DATABASE_URL=database_url,
        CAIRN_SECRET_KEY=SECRET_KEY,
        CAIRN_ROOT_ACCESS_TOKEN=ROOT_TOKEN,
        CAIRN_DATA_DIR=str(data_dir),
        CAIRN_ROOT_URL=f"http://127.0.0.1:{port}",
        CAIRN_CLAIM_TIMEOUT="2",
        CAIRN_REAPER_INTERVAL="0.2",
        CAIRN_LOG_LEVEL="warning",
    )
    env.update({"CAIRN_" + name.upper(): value for name, value in settings.items()})
    process = subprocess.Popen([sys.executable, "-m", "cairn.cli", *command, "--port", str(port), *serve_args], env=env)
    give_up = time.monotonic() + 30
    while time.monotonic() < give_up and process.poll() is None:
        try:
            httpx.get(f"http://127.0.0.1:{port}/api/queue/v1/ping", timeout=1)
            return process
        except httpx.HTTPError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("cairn serve did not start")


def stop_server(process: subprocess.Popen, timeout: float = 30) -> None:
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)
        raise


def root_options(root_url: str, max_retries: int = 0) -> dict[str, Any]:
    credentials = {"clientId": "static/root", "accessToken": ROOT_TOKEN}
    return {"rootUrl": root_url, "credentials": credentials, "maxRetries": max_retries}


class MixedLoad:
    """Threads that create tasks, claim them two at a time and report the first completed.

    The second claim of each batch is abandoned, like a worker that vanished,
    so its claim must lapse and the task retry. A create that fails is sent
    again with the same id and body until it is acknowledged. Every
    acknowledged call is recorded, and every failure as ``(method, error)``.
    Clients do not retry (``maxRetries`` 0): each failure is seen as it is.
    """

    def __init__(self, root_urls: list[str], queue_id: str, threads: int = 4):
        self.root_urls = root_urls
        self.queue_id = queue_id
        self.created: set[str] = set()
        self.claimed: set[tuple[str, int]] = set()
        self.completed: set[tuple[str, int]] = set()
        self.abandoned: set[tuple[str, int]] = set()
        self.failures: list[tuple[str, Exception]] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(threads)]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 30) -> None:
        self._stop.set()
        give_up = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, give_up - time.monotonic()))
        assert not any(t.is_alive() for t in self._threads), "a client call hung"

    def wait_for(self, created: int, completed: int, timeout: float = 60) -> None:
        give_up = time.monotonic() + timeout
        while len(self.created) < created or len(self.completed) < completed:
            stalled = f"load stalled: {len(self.created)} created, {len(self.completed)} completed"
            assert time.monotonic() < give_up, stalled
            time.sleep(0.05)

    def _run(self, n: int) -> None:
        queue = taskcluster.Queue(root_options(self.root_urls[n % len(self.root_urls)]))
        worker = {"workerGroup": "load", "workerId": f"w{n}", "tasks": 2}
        unacknowledged: tuple[str, dict[str, Any]] | None = None
        while not self._stop.is_set():
            task_id, definition = unacknowledged or (taskcluster.slugId(), task_definition(taskQueueId=self.queue_id))
            unacknowledged = (task_id, definition)
            if not self._call("createTask", queue.createTask, task_id, definition):
                continue
            self.created.add(task_id)
            unacknowledged = None
            answer = self._call("claimWork", queue.claimWork, self.queue_id, worker)
            for index, claim in enumerate(answer["tasks"] if answer else []):
                run = (claim["status"]["taskId"], claim["runId"])
                self.claimed.add(run)
                if index == 1:
                    self.abandoned.add(run)
                elif self._call("reportCompleted", queue.reportCompleted, run[0], str(run[1])):
                    self.completed.add(run)

    def _call(self, method: str, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args) or True
        except Exception as e:
            if not self._stop.is_set():
                self.failures.append((method, e))
            self._stop.wait(0.05)
            return None
