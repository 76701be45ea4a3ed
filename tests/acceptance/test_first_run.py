"""`make run` as a new user meets it: start, copy the exports, submit the README's example."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import free_port

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()


def test_first_run_starts_cairn_and_a_worker_that_runs_the_readme_example(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CAIRN_", "TASKCLUSTER_"))}
    first_run = subprocess.Popen(
        [sys.executable, "-m", "cairn.first_run", "--data-dir", str(tmp_path / ".cairn"), "--port", str(port)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        printed = ""
        give_up = time.monotonic() + 30
        while "task log -f" not in printed and time.monotonic() < give_up:
            printed += first_run.stdout.readline()
        exports = dict(re.findall(r"export (TASKCLUSTER_\w+)=(\S+)", printed))
        assert exports["TASKCLUSTER_ROOT_URL"] == f"http://127.0.0.1:{port}"
        assert exports["TASKCLUSTER_CLIENT_ID"] == "static/root"
        assert len(exports["TASKCLUSTER_ACCESS_TOKEN"]) == 44
        # The one command it prints is the one the README shows.
        assert "task create examples/hello.yml" in printed
        assert "cairn task create examples/hello.yml" in README

        user = {**env, **exports}
        cli = [sys.executable, "-m", "cairn.cli"]
        created = _run([*cli, "task", "create", "examples/hello.yml"], user, timeout=60)
        task_id, state = created.split()
        assert state in ("pending", "running", "completed")

        log = _run([*cli, "task", "log", "-f", task_id], user, timeout=90)
        assert "hello from cairn" in log
        assert f"running as task {task_id}" in log
        status = _run([*cli, "task", "status", task_id], user, timeout=30)
        assert re.search(r"^state\s+completed\s*$", status, re.MULTILINE)
        # ...as the README promises, line for line where it can.
        assert "hello from cairn\nrunning as task " in README
        assert re.search(r"^state\s+completed$", README, re.MULTILINE)
    finally:
        first_run.send_signal(signal.SIGINT)
        try:
            first_run.wait(30)
        except subprocess.TimeoutExpired:
            first_run.kill()
    assert first_run.returncode == 0
    # The keys it generated are the owner's alone.
    assert oct((tmp_path / ".cairn" / "root-access-token").stat().st_mode & 0o777) == "0o600"


def _run(argv: list[str], env: dict[str, str], timeout: float) -> str:
    give_up = time.monotonic() + timeout
    while True:
        done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
        if done.returncode == 0:
            return done.stdout
        # The server may still be opening its port right after start.
        if "connect" not in (done.stdout + done.stderr).lower() or time.monotonic() > give_up:
            raise AssertionError(f"{argv} failed: {done.stdout}{done.stderr}")
        time.sleep(0.5)
