"""Live logs through Cairn: a real ``cairn worker`` streams a task's log to the server as it is written.

Readers follow ``public/logs/live.log`` from other processes, through the
server the worker talks to and through a second server process on the same
database; nothing connects to the worker.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import taskcluster

from tests.acceptance.test_worker import (  # noqa: F401  (fixtures)
    create,
    resolved,
    server,
    settings_overrides,
    start_worker,
    task_log,
    wait_for,
)
from tests.conftest import free_port
from tests.integration.cairn_process import start_server, stop_server

# Reads the live log at argv[1] with its own HTTP client, printing each line with its arrival time.
READER = (
    "import sys, time, httpx\n"
    "with httpx.stream('GET', sys.argv[1], follow_redirects=True, timeout=30) as r:\n"
    "    print('status', r.status_code, r.headers.get('content-type'), flush=True)\n"
    "    for line in r.iter_lines():\n"
    "        print(repr(time.time()), line, flush=True)\n"
)


def _live_log_url(queue: Any, task_id: str) -> str:
    def reference() -> dict[str, Any] | None:
        try:
            found = queue.artifact(task_id, "0", "public/logs/live.log")
        except taskcluster.exceptions.TaskclusterRestFailure as e:
            if e.status_code == 404:
                return None
            raise
        return found if found["storageType"] == "reference" else None

    return wait_for(reference, what="the live log reference")["url"]


class Reader:
    """Another process following a URL, line by line."""

    def __init__(self, url: str, out: Path):
        self.out = out
        self._file = out.open("wb")
        self.process = subprocess.Popen([sys.executable, "-c", READER, url], stdout=self._file)

    def lines(self) -> list[str]:
        return [line.split(" ", 1)[1] if line[:1].isdigit() else line for line in self.out.read_text().splitlines()]

    def wait(self, timeout: float = 30) -> int:
        try:
            return self.process.wait(timeout)
        finally:
            self._file.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.wait()


def test_a_log_is_followed_through_the_server_from_another_process_while_the_task_runs(server, start_worker, tmp_path):
    queue = server.client("queue")
    worker = start_worker()
    go = tmp_path / "go"
    task_id = create(queue, {
        "command": f"echo first; echo second; while [ ! -e {go} ]; do sleep 0.05; done; echo last; echo x > build.log",
        "artifacts": [{"type": "file", "name": "public/build.log", "path": "build.log"}],
    })
    url = _live_log_url(queue, task_id)
    assert url.startswith(f"{server.root_url}/api/relay/v1/task/{task_id}/runs/0/log/")

    reader = Reader(url, tmp_path / "reader.out")
    try:
        # The lines printed so far arrive while the task still waits; the stream stays open.
        wait_for(lambda: "second" in reader.lines(), what="the first lines through the server")
        assert reader.lines()[0] == "status 200 text/plain; charset=utf-8"
        assert "last" not in reader.lines()
        assert queue.status(task_id)["status"]["state"] == "running"
        assert reader.process.poll() is None
        go.touch()
        # ... and it keeps following: the rest arrives, then the stream ends with the log.
        assert reader.wait() == 0
    finally:
        reader.stop()
    lines = reader.lines()
    assert lines.index("first") < lines.index("second") < lines.index("last")
    assert "Resolving as completed after" in lines[-1]
    assert resolved(queue, task_id)["state"] == "completed"

    # Afterwards the artifact is the stored log, with all the live log held.
    stored = task_log(queue, task_id)
    assert stored.splitlines() == lines[1:]
    artifacts = {a["name"]: a for a in queue.listArtifacts(task_id, "0")["artifacts"]}
    assert artifacts["public/logs/live.log"]["storageType"] == "link"
    assert artifacts["public/logs/live_backing.log"]["contentType"].startswith("text/plain")
    assert artifacts["public/build.log"]["contentType"] == "text/plain"
    # Never a connection to the worker's machine: it listens on no port.
    assert _listening_ports(worker.process.pid) == set()


def _listening_ports(pid: int) -> set[str]:
    inodes = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    if not fd_dir.is_dir():
        return set()
    for fd in fd_dir.iterdir():
        try:
            target = fd.readlink().as_posix()
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    listening = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # LISTEN
                listening.add(fields[1])
    return listening


def test_a_second_server_process_on_the_same_database_serves_the_live_log(
    server, start_worker, tmp_path, database_url
):
    queue = server.client("queue")
    start_worker()
    go = tmp_path / "go"
    task_id = create(queue, {"command": f"echo early; while [ ! -e {go} ]; do sleep 0.05; done; echo late"})
    url = _live_log_url(queue, task_id)

    port = free_port()
    other = start_server(database_url, tmp_path / "other", port)
    try:
        elsewhere = url.replace(server.root_url, f"http://127.0.0.1:{port}")
        reader = Reader(elsewhere, tmp_path / "reader.out")
        try:
            wait_for(lambda: "early" in reader.lines(), what="the log through the second process")
            assert "late" not in reader.lines()
            go.touch()
            assert reader.wait() == 0
        finally:
            reader.stop()
        assert reader.lines().index("early") < reader.lines().index("late")
        assert "Resolving as completed after" in reader.lines()[-1]
    finally:
        stop_server(other)


def test_appends_need_the_runs_credentials_and_fit_the_log(server, start_worker):
    queue = server.client("queue")
    task_id = create(queue, {"command": "true"})
    claim = queue.claimWork("cairn-test/worker", {"workerGroup": "g", "workerId": "w", "tasks": 1})["tasks"][0]
    assert claim["status"]["taskId"] == task_id
    base = f"{server.root_url}/api/relay/v1/task/{task_id}/runs/0/log"
    token = "t" * 32

    from cairn.worker.relay_client import RELAY_REFERENCE

    Relay = taskcluster.client.createApiClient("Relay", RELAY_REFERENCE)
    relay = Relay({"rootUrl": server.root_url, "credentials": claim["credentials"], "maxRetries": 0})
    first = relay.appendLog(task_id, "0", {"token": token, "offset": 0, "data": "aGVsbG8K"})
    assert first == {"size": 6, "final": False, "url": f"{base}/{token}"}
    # The same append again is harmless; one that leaves a gap, or uses another token, is refused.
    assert relay.appendLog(task_id, "0", {"token": token, "offset": 0, "data": "aGVsbG8K"})["size"] == 6
    for body in ({"token": token, "offset": 9, "data": "eA=="}, {"token": "u" * 32, "offset": 6, "data": "eA=="}):
        with pytest.raises(taskcluster.exceptions.TaskclusterRestFailure) as refused:
            relay.appendLog(task_id, "0", body)
        assert refused.value.status_code == 409
    with pytest.raises(taskcluster.exceptions.TaskclusterRestFailure) as bad:
        relay.appendLog(task_id, "0", {"token": token, "offset": 6, "data": "not base64!"})
    assert bad.value.status_code == 400
    # Another run's credentials may not append here.
    other_task = create(queue, {"command": "true"})
    other = queue.claimWork("cairn-test/worker", {"workerGroup": "g", "workerId": "w", "tasks": 1})["tasks"][0]
    assert other["status"]["taskId"] == other_task
    stranger = Relay({"rootUrl": server.root_url, "credentials": other["credentials"], "maxRetries": 0})
    with pytest.raises(taskcluster.exceptions.TaskclusterRestFailure) as forbidden:
        stranger.appendLog(task_id, "0", {"token": token, "offset": 6, "data": "eA=="})
    assert forbidden.value.status_code == 403

    assert relay.appendLog(task_id, "0", {"token": token, "offset": 6, "data": "d29ybGQK", "final": True})["final"]
    whole = httpx.get(f"{base}/{token}", timeout=10)
    assert (whole.status_code, whole.text) == (200, "hello\nworld\n")
    assert httpx.get(f"{base}/{'v' * 32}", timeout=10).status_code == 404
    # A complete log takes nothing more.
    with pytest.raises(taskcluster.exceptions.TaskclusterRestFailure) as complete:
        relay.appendLog(task_id, "0", {"token": token, "offset": 12, "data": "eA=="})
    assert complete.value.status_code == 409


def test_live_chunks_are_dropped_after_the_run_and_the_address_then_leads_to_the_stored_log(
    server, start_worker, monkeypatch, tmp_path
):
    from cairn.projections.relay import live_logs

    monkeypatch.setattr(live_logs, "KEEP_FINISHED", 0.5)
    queue = server.client("queue")
    start_worker()
    go = tmp_path / "go"
    task_id = create(queue, {"command": f"echo kept; while [ ! -e {go} ]; do sleep 0.05; done"})
    url = _live_log_url(queue, task_id)
    go.touch()
    assert resolved(queue, task_id)["state"] == "completed"
    store = live_logs.LiveLogStore(server.runtime.store)
    wait_for(lambda: store.state(task_id, 0) is None, what="the live chunks to be dropped")
    response = httpx.get(url, timeout=10)
    assert response.status_code == 303
    assert response.headers["location"].endswith(f"/task/{task_id}/runs/0/artifacts/public/logs/live.log")
    assert "kept" in task_log(queue, task_id)
