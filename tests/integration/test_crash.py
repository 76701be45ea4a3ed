"""The server killed with SIGKILL under load: nothing it answered 2xx for is lost.

A mixed load of creates, claims and reports runs against a `cairn serve`
subprocess; the process is killed mid-stream and started again on the same
database. Then every createTask answered 2xx has its task, every report
answered 2xx has its resolution, the views rebuilt from the log equal the
live ones, and runs that were claimed but never reported expire and retry.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import taskcluster
from click.testing import CliRunner

from tests.acceptance.queue_helpers import task_definition
from tests.conftest import ROOT_TOKEN, SECRET_KEY, free_port

QUEUE_ID = "cairn-test/crash"


def start_server(database_url: str, data_dir: Path, port: int) -> subprocess.Popen:
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
    process = subprocess.Popen([sys.executable, "-m", "cairn.cli", "serve", "--port", str(port)], env=env)
    give_up = time.monotonic() + 30
    while time.monotonic() < give_up:
        try:
            httpx.get(f"http://127.0.0.1:{port}/api/queue/v1/ping", timeout=1)
            return process
        except httpx.HTTPError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("cairn serve did not start")


def test_sigkill_under_load_loses_nothing_that_was_acknowledged(database_url, tmp_path):
    port = free_port()
    root_url = f"http://127.0.0.1:{port}"
    options = {"rootUrl": root_url, "credentials": {"clientId": "static/root", "accessToken": ROOT_TOKEN}, "maxRetries": 0}
    server = start_server(database_url, tmp_path, port)

    created: set[str] = set()
    completed: set[str] = set()
    claimed_unreported: set[tuple[str, int]] = set()
    stop = threading.Event()

    def load(n: int) -> None:
        queue = taskcluster.Queue(options)
        while not stop.is_set():
            task_id = taskcluster.slugId()
            try:
                queue.createTask(task_id, task_definition(taskQueueId=QUEUE_ID))
                created.add(task_id)
                claims = queue.claimWork(QUEUE_ID, {"workerGroup": "crash", "workerId": f"w{n}", "tasks": 2})["tasks"]
                for index, claim in enumerate(claims):
                    claimed = claim["status"]["taskId"]
                    if index == 1:
                        claimed_unreported.add((claimed, claim["runId"]))  # a worker that will never report
                        continue
                    queue.reportCompleted(claimed, str(claim["runId"]))
                    completed.add(claimed)
            except Exception:
                if stop.is_set():
                    return
                time.sleep(0.05)  # the server is gone; wait for it to come back

    threads = [threading.Thread(target=load, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    try:
        give_up = time.monotonic() + 60
        while (len(created) < 20 or len(completed) < 5) and time.monotonic() < give_up:
            time.sleep(0.05)
        server.send_signal(signal.SIGKILL)
        server.wait(10)
        acknowledged_before_crash = (len(created), len(completed))
        server = start_server(database_url, tmp_path, port)
        time.sleep(2)
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    assert acknowledged_before_crash[0] > 10, "the load did not get going before the kill"

    queue = taskcluster.Queue(options)
    try:
        statuses = {}
        # A create whose answer the kill swallowed may still have happened, and
        # its task been claimed since: look up every task the load touched.
        ids = sorted(created | completed | {task_id for task_id, _ in claimed_unreported})
        for start in range(0, len(ids), 500):
            for entry in queue.statuses({"taskIds": ids[start:start + 500]})["statuses"]:
                statuses[entry["taskId"]] = entry["status"]
        assert created <= set(statuses), "a task whose creation was acknowledged is missing"
        for task_id in completed:
            assert any(r["state"] == "completed" for r in statuses[task_id]["runs"]), task_id

        # Claimed but never reported: the claim lapses (2 s) and the task retries.
        def retried(task_id: str, run_id: int) -> bool:
            runs = queue.status(task_id)["status"]["runs"]
            run = runs[run_id]
            return run["state"] == "exception" and run["reasonResolved"] == "claim-expired" and len(runs) > run_id + 1

        unreported = claimed_unreported
        give_up = time.monotonic() + 30
        while unreported and not all(retried(*claim) for claim in unreported):
            assert time.monotonic() < give_up, "claimed-but-unreported runs did not expire and retry"
            time.sleep(0.2)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)

    from cairn.cli import main

    env = {
        "CAIRN_DATABASE_URL": database_url,
        "CAIRN_SECRET_KEY": SECRET_KEY,
        "CAIRN_DATA_DIR": str(tmp_path),
    }
    verified = CliRunner().invoke(main, ["projections", "verify"], env=env)
    assert verified.exit_code == 0, verified.output
