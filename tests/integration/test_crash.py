"""The server killed with SIGKILL under load: nothing it answered 2xx for is lost.

A mixed load of creates, claims and reports runs against a `cairn serve`
subprocess; the process is killed mid-stream and started again on the same
database. Then every createTask answered 2xx has its task, every report
answered 2xx has its resolution, the views rebuilt from the log equal the
live ones, and runs that were claimed but never reported expire and retry.
"""

from __future__ import annotations

import signal
import time

import taskcluster
from click.testing import CliRunner

from tests.conftest import SECRET_KEY, free_port
from tests.integration.cairn_process import MixedLoad, root_options, start_server, stop_server

QUEUE_ID = "cairn-test/crash"


def test_sigkill_under_load_loses_nothing_that_was_acknowledged(database_url, tmp_path):
    port = free_port()
    root_url = f"http://127.0.0.1:{port}"
    server = start_server(database_url, tmp_path, port)
    load = MixedLoad([root_url], QUEUE_ID)
    load.start()
    try:
        load.wait_for(created=20, completed=5)
        server.send_signal(signal.SIGKILL)
        server.wait(10)
        acknowledged_before_crash = len(load.created)
        server = start_server(database_url, tmp_path, port)
        time.sleep(2)
    finally:
        load.stop()
    assert acknowledged_before_crash > 10, "the load did not get going before the kill"

    queue = taskcluster.Queue(root_options(root_url))
    try:
        statuses = {}
        # A create whose answer the kill swallowed may still have happened, and
        # its task been claimed since: look up every task the load touched.
        ids = sorted(load.created | {task_id for task_id, _ in load.claimed})
        for start in range(0, len(ids), 500):
            for entry in queue.statuses({"taskIds": ids[start:start + 500]})["statuses"]:
                statuses[entry["taskId"]] = entry["status"]
        assert load.created <= set(statuses), "a task whose creation was acknowledged is missing"
        for task_id, run_id in load.completed:
            assert statuses[task_id]["runs"][run_id]["state"] == "completed", task_id

        # Claimed but never reported: the claim lapses (2 s) and the task retries.
        def retried(task_id: str, run_id: int) -> bool:
            runs = queue.status(task_id)["status"]["runs"]
            run = runs[run_id]
            return run["state"] == "exception" and run["reasonResolved"] == "claim-expired" and len(runs) > run_id + 1

        give_up = time.monotonic() + 30
        while load.abandoned and not all(retried(*claim) for claim in load.abandoned):
            assert time.monotonic() < give_up, "claimed-but-unreported runs did not expire and retry"
            time.sleep(0.2)
    finally:
        stop_server(server)

    from cairn.cli import main

    env = {
        "CAIRN_DATABASE_URL": database_url,
        "CAIRN_SECRET_KEY": SECRET_KEY,
        "CAIRN_DATA_DIR": str(tmp_path),
    }
    verified = CliRunner().invoke(main, ["projections", "verify"], env=env)
    assert verified.exit_code == 0, verified.output
