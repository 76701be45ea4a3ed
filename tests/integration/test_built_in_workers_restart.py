"""The built-in workers across downtime and a crash: every built-in task resolves once, none is lost.

Tasks created while no process runs the built-in workers wait, pending, and
resolve as soon as one starts; tasks created around a SIGKILL of
``cairn serve`` all resolve after it starts again, each with one run.
"""

from __future__ import annotations

import signal
import threading
import time
from typing import Any

import taskcluster

from tests.acceptance.queue_helpers import task_definition
from tests.conftest import free_port
from tests.integration.cairn_process import root_options, start_server, stop_server

QUEUES = ("built-in/succeed", "built-in/fail")
EXPECTED = {"built-in/succeed": "completed", "built-in/fail": "failed"}


def create(queue: Any, n: int) -> tuple[str, str]:
    task_id, task_queue_id = taskcluster.slugId(), QUEUES[n % 2]
    queue.createTask(task_id, task_definition(taskQueueId=task_queue_id, payload={}))
    return task_id, task_queue_id


def all_resolved_once(queue: Any, tasks: dict[str, str], timeout: float = 60) -> None:
    give_up = time.monotonic() + timeout
    waiting = dict(tasks)
    while waiting:
        ids = sorted(waiting)
        for start in range(0, len(ids), 500):
            for entry in queue.statuses({"taskIds": ids[start:start + 500]})["statuses"]:
                status = entry["status"]
                if status["state"] in ("completed", "failed", "exception"):
                    assert status["state"] == EXPECTED[waiting[entry["taskId"]]], status
                    assert len(status["runs"]) == 1, status
                    del waiting[entry["taskId"]]
        assert time.monotonic() < give_up, f"{len(waiting)} built-in tasks never resolved"
        time.sleep(0.1)


def test_built_in_tasks_wait_for_the_built_in_workers_and_survive_a_crash(database_url, tmp_path):
    port = free_port()
    root_url = f"http://127.0.0.1:{port}"
    queue = taskcluster.Queue(root_options(root_url))

    # HTTP alone: the tasks stay pending.
    web = start_server(database_url, tmp_path, port, command=("run", "web"))
    try:
        waiting = dict(create(queue, n) for n in range(10))
        time.sleep(1.5)
        assert {queue.status(t)["status"]["state"] for t in waiting} == {"pending"}
    finally:
        stop_server(web)

    server = start_server(database_url, tmp_path, port)
    all_resolved_once(queue, waiting)

    # Killed while tasks keep arriving: every acknowledged one resolves once after the restart.
    created: dict[str, str] = {}
    stop = threading.Event()

    def keep_creating() -> None:
        n = 0
        while not stop.is_set():
            try:
                task_id, task_queue_id = create(queue, n)
                created[task_id] = task_queue_id
            except Exception:
                time.sleep(0.05)
            n += 1

    creator = threading.Thread(target=keep_creating, daemon=True)
    creator.start()
    try:
        while len(created) < 30:
            time.sleep(0.02)
        server.send_signal(signal.SIGKILL)
        server.wait(10)
        server = start_server(database_url, tmp_path, port)
        time.sleep(0.5)
    finally:
        stop.set()
        creator.join(30)
    try:
        all_resolved_once(queue, created)
    finally:
        stop_server(server)
