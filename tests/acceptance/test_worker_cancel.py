"""Cancelling a running task stops it within seconds: the worker hears it on the event stream.

Claims here last ten minutes, so the worker's next reclaim is minutes away:
only the event stream can tell it of a cancel in time. A worker that cannot
use the stream (no ``events:listen:`` scope) still learns of it at its next
reclaim, which is the fallback.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import taskcluster

from tests.acceptance.queue_helpers import TASK_QUEUE
from tests.acceptance.tcp_relay import TcpRelay
from tests.acceptance.test_worker import _gone, _pid_from, create, resolved, server, task_log, wait_for  # noqa: F401
from tests.conftest import ROOT_TOKEN

CANCELED = "The queue resolved the run as exception (canceled): the task was stopped"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"claim_timeout": 600}


class Worker:
    """`cairn worker` as a subprocess, with the given root URL and credentials."""

    def __init__(self, directory: Path, root_url: str, client_id: str, access_token: str, capacity: int = 1):
        directory.mkdir()
        self.log_path = directory / "worker.stderr"
        env = dict(os.environ, TASKCLUSTER_ROOT_URL=root_url, TASKCLUSTER_CLIENT_ID=client_id,
                   TASKCLUSTER_ACCESS_TOKEN=access_token)
        command = [sys.executable, "-m", "cairn.cli", "worker", "--task-queue", TASK_QUEUE, "--worker-group", "tests",
                   "--worker-id", "w1", "--capacity", str(capacity), "--work-dir", str(directory / "work")]
        with self.log_path.open("wb") as stderr:
            self.process = subprocess.Popen(command, env=env, stdout=stderr, stderr=stderr)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


@pytest.fixture
def workers(tmp_path) -> Iterator[list[Worker]]:
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.stop()
        print(worker.output())  # shown when the test fails


def sleeper(queue: Any, pid_file: Path) -> str:
    return create(queue, {"command": f"echo started; echo $$ > {pid_file}; exec sleep 120"})


def cancel_and_time_the_kill(queue: Any, task_id: str, pid: int, within: float = 5) -> float:
    queue.cancelTask(task_id)
    cancelled = time.monotonic()
    wait_for(lambda: _gone(pid), timeout=within + 10, what=f"process {pid} to be killed")
    took = time.monotonic() - cancelled
    assert took < within, f"killed {took:.2f} s after the cancel"
    return took


def test_a_cancel_kills_the_running_tasks_within_seconds_and_frees_the_worker(server, workers, tmp_path):
    queue = server.client("queue")
    workers.append(Worker(tmp_path / "worker", server.root_url, "static/root", ROOT_TOKEN, capacity=2))
    first, second = sleeper(queue, tmp_path / "first.pid"), sleeper(queue, tmp_path / "second.pid")
    first_pid, second_pid = _pid_from(tmp_path / "first.pid"), _pid_from(tmp_path / "second.pid")

    cancel_and_time_the_kill(queue, first, first_pid)
    assert not _gone(second_pid), "the other task is untouched"
    cancel_and_time_the_kill(queue, second, second_pid)

    # Both slots are free at once: the next tasks start without waiting for a reclaim.
    started = time.monotonic()
    following = [create(queue, {"command": "echo next"}) for _ in range(2)]
    for task_id in following:
        assert resolved(queue, task_id)["state"] == "completed"
    assert time.monotonic() - started < 20
    for task_id in (first, second):
        status = queue.status(task_id)["status"]
        assert (status["state"], status["runs"][0]["reasonResolved"]) == ("exception", "canceled")
        log = wait_for(lambda t=task_id: _uploaded_log(queue, t), what="the cancelled task's log")
        assert "started\n" in log
        assert CANCELED in log


def test_the_stream_resumes_after_a_drop_and_misses_no_cancel(server, workers, tmp_path):
    """The connection is cut and kept down while the task is cancelled; on reconnecting, the worker
    resumes from its last position and still gets the cancel."""
    queue = server.client("queue")
    relay = TcpRelay(server.port)
    try:
        worker = Worker(tmp_path / "worker", relay.url, "static/root", ROOT_TOKEN)
        workers.append(worker)
        pid_file = tmp_path / "task.pid"
        task_id = sleeper(queue, pid_file)
        pid = _pid_from(pid_file)

        relay.cut(refuse=True)
        queue.cancelTask(task_id)  # told to the server directly, while the worker cannot hear
        time.sleep(1.0)
        assert not _gone(pid), "nothing could have told the worker yet"
        accepted = relay.accepted
        relay.refusing = False
        reopened = time.monotonic()
        wait_for(lambda: _gone(pid), timeout=20, what=f"process {pid} to be killed")
        assert time.monotonic() - reopened < 10
        assert relay.accepted > accepted
        assert "reconnecting" in worker.output()
        assert "from now" not in worker.output(), "it resumed from a position"
        log = wait_for(lambda: _uploaded_log(queue, task_id), what="the log")
        assert CANCELED in log
    finally:
        relay.close()


@pytest.mark.parametrize("settings_overrides", [{"claim_timeout": 3, "reaper_interval": 0.2}])
def test_without_the_stream_a_cancel_is_noticed_at_the_next_reclaim(server, workers, tmp_path):
    queue = server.client("queue")
    auth = server.client("auth")
    scopes = [f"queue:claim-work:{TASK_QUEUE}", "queue:worker-id:tests/w1"]  # no events:listen:*
    created = auth.createClient("tests/worker-without-stream", {
        "description": "a worker that may not listen to the event stream",
        "expires": "3000-01-01T00:00:00.000Z",
        "scopes": scopes,
    })
    worker = Worker(tmp_path / "worker", server.root_url, created["clientId"], created["accessToken"])
    workers.append(worker)
    pid_file = tmp_path / "task.pid"
    task_id = sleeper(queue, pid_file)
    pid = _pid_from(pid_file)

    cancel_and_time_the_kill(queue, task_id, pid, within=5)  # a claim of 3 s is reclaimed every second
    assert "event stream: HTTP 403" in worker.output()
    log = wait_for(lambda: _uploaded_log(queue, task_id), what="the log")
    assert "The claim was lost" in log


@pytest.mark.parametrize("settings_overrides", [{"claim_timeout": 600, "reaper_interval": 0.2}])
def test_a_task_past_its_deadline_is_stopped_as_soon_as_the_queue_resolves_it(server, workers, tmp_path):
    queue = server.client("queue")
    workers.append(Worker(tmp_path / "worker", server.root_url, "static/root", ROOT_TOKEN))
    pid_file = tmp_path / "task.pid"
    deadline = taskcluster.fromNow("6 seconds")
    task_id = create(queue, {"command": f"echo $$ > {pid_file}; exec sleep 120"},
                     deadline=taskcluster.stringDate(deadline))
    pid = _pid_from(pid_file)

    wait_for(lambda: _gone(pid), timeout=30, what=f"process {pid} to be killed")
    status = queue.status(task_id)["status"]
    assert (status["state"], status["runs"][0]["reasonResolved"]) == ("exception", "deadline-exceeded")
    log = wait_for(lambda: _uploaded_log(queue, task_id), what="the log")
    assert "The queue resolved the run as exception (deadline-exceeded): the task was stopped" in log


def _uploaded_log(queue: Any, task_id: str) -> str | None:
    artifacts = {a["name"]: a for a in queue.listArtifacts(task_id, "0")["artifacts"]}
    if artifacts.get("public/logs/live.log", {}).get("storageType") != "link":
        return None
    return task_log(queue, task_id)
