"""`cairn serve --workers N`: several server processes on one port, sharing PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import Counter

import taskcluster

from tests.acceptance.queue_helpers import task_definition
from tests.conftest import ROOT_TOKEN, SECRET_KEY, free_port
from tests.integration.cairn_process import root_options, start_server, stop_server

PROCESSES = 2


def test_several_processes_share_one_queue(database_url, tmp_path):
    if database_url.startswith("sqlite"):
        # SQLite's writers queue on a lock inside one process: refused, with the reason.
        env = dict(os.environ, CAIRN_DATABASE_URL=database_url, CAIRN_SECRET_KEY=SECRET_KEY,
                   CAIRN_ROOT_ACCESS_TOKEN=ROOT_TOKEN, CAIRN_DATA_DIR=str(tmp_path))
        done = subprocess.run([sys.executable, "-m", "cairn.cli", "serve", "--port", str(free_port()),
                               "--workers", "2"], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode != 0
        assert "--workers needs PostgreSQL" in done.stderr
        return

    port = free_port()
    server = start_server(database_url, tmp_path, port, serve_args=["--workers", str(PROCESSES)])
    root_url = f"http://127.0.0.1:{port}"
    try:
        children = _children(server.pid)
        assert len(children) == PROCESSES, children
        queue_id = "cairn-test/processes"

        # Every call opens a new connection, so calls land on either process.
        task_ids = [taskcluster.slugId() for _ in range(40)]
        claimed: list[tuple[str, int]] = []
        lock = threading.Lock()

        def work(share: list[str]) -> None:
            queue = taskcluster.Queue(root_options(root_url))
            for task_id in share:
                queue.createTask(task_id, task_definition(taskQueueId=queue_id))
                answer = queue.claimWork(queue_id, {"workerGroup": "g", "workerId": "w", "tasks": 1})
                for claim in answer["tasks"]:
                    queue.reportCompleted(claim["status"]["taskId"], str(claim["runId"]))
                    with lock:
                        claimed.append((claim["status"]["taskId"], claim["runId"]))

        threads = [threading.Thread(target=work, args=(task_ids[n::4],)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert [run for run, n in Counter(claimed).items() if n > 1] == []
        queue = taskcluster.Queue(root_options(root_url))
        states = Counter(queue.status(t)["status"]["state"] for t in task_ids)
        assert states == {"completed": len(task_ids)}

        # A claimWork waiting in one process is woken by a task created in
        # either: through LISTEN/NOTIFY, well before the 5 s fallback.
        for _ in range(6):
            answered: dict[str, float] = {}

            def wait_for_work() -> None:
                waiting = taskcluster.Queue(root_options(root_url))
                answer = waiting.claimWork(queue_id, {"workerGroup": "g", "workerId": "w", "tasks": 1})
                answered["at"] = time.monotonic()
                answered["tasks"] = len(answer["tasks"])

            waiter = threading.Thread(target=wait_for_work)
            waiter.start()
            time.sleep(0.3)
            task_id = taskcluster.slugId()
            queue.createTask(task_id, task_definition(taskQueueId=queue_id))
            created = time.monotonic()
            waiter.join(25)
            assert answered["tasks"] == 1
            assert answered["at"] - created < 2.0
            queue.reportCompleted(task_id, "0")
    finally:
        stop_server(server)
    assert all(not os.path.exists(f"/proc/{pid}") for pid in children)


def _children(pid: int) -> list[int]:
    """The server processes uvicorn spawned (not multiprocessing's resource tracker)."""
    give_up = time.monotonic() + 30
    while True:
        found = [
            int(child)
            for child in open(f"/proc/{pid}/task/{pid}/children").read().split()
            if b"spawn_main" in open(f"/proc/{child}/cmdline", "rb").read()
        ]
        if len(found) >= PROCESSES or time.monotonic() > give_up:
            return found
        time.sleep(0.1)
