"""`make run` as a new user meets it: start, copy the exports, submit the README's example."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
import zipfile
from pathlib import Path

from tests.conftest import free_port

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()


def _make_run(port: int, data_dir: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    """``make run`` as the README has it, on this interpreter's virtualenv (already installed)."""
    venv = sys.prefix
    return subprocess.Popen(
        ["make", "--no-print-directory", "-o", f"{venv}/.runtime-stamp", "run",
         f"VENV={venv}", f"PORT={port}", f"DATA={data_dir}"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def _processes_marked(mark: str) -> list[int]:
    """Processes whose environment carries ``mark``: everything ``make run`` started."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if mark.encode() in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def test_first_run_starts_cairn_and_a_worker_that_runs_the_readme_example(tmp_path):
    port = free_port()
    mark = f"CAIRN_FIRST_RUN_TEST={uuid.uuid4().hex}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CAIRN_", "TASKCLUSTER_"))}
    env[mark.split("=")[0]] = mark.split("=")[1]
    first_run = _make_run(port, tmp_path / ".cairn", env)
    printed = ""
    try:
        give_up = time.monotonic() + 60
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
        assert _processes_marked(mark), "make run started nothing?"
    finally:
        # SIGTERM to make itself, as a process manager or `kill` would send it.
        first_run.send_signal(signal.SIGTERM)
        try:
            rest, _ = first_run.communicate(timeout=30)
            printed += rest
        except subprocess.TimeoutExpired:
            first_run.kill()
    # make stops as SIGTERM asks, once its recipe (first_run) has stopped what it started.
    assert first_run.returncode in (0, -signal.SIGTERM), printed
    # Nothing it started is left behind.
    give_up = time.monotonic() + 10
    while _processes_marked(mark) and time.monotonic() < give_up:
        time.sleep(0.2)
    assert _processes_marked(mark) == []
    # The worker started once the server answered: it never had to retry.
    assert "retry" not in printed.lower() and "trying again" not in printed, printed
    # The keys it generated are the owner's alone.
    assert oct((tmp_path / ".cairn" / "root-access-token").stat().st_mode & 0o777) == "0o600"


def test_make_run_refuses_a_port_in_use_before_doing_anything(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CAIRN_", "TASKCLUSTER_"))}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _make_run(port, tmp_path / ".cairn", env)
        output, _ = done.communicate(timeout=60)
    assert done.returncode != 0
    assert f"127.0.0.1:{port} is already in use" in output
    assert "make run PORT=" in output
    assert "export TASKCLUSTER" not in output
    assert not (tmp_path / ".cairn").exists()


def test_the_package_builds_without_warnings_from_its_own_configuration(tmp_path):
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-v", "-w", str(tmp_path), str(REPO)],
        capture_output=True, text=True, timeout=300,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    output = built.stdout + built.stderr
    for complaint in ("Package would be ignored", "SetuptoolsDeprecationWarning", "is absent from the `packages`",
                      "License classifiers are deprecated", "`project.license` as a TOML table is deprecated"):
        assert complaint not in output
    names = zipfile.ZipFile(next(tmp_path.glob("cairn-*.whl"))).namelist()
    # Every schema and every named query is in the wheel.
    for folder, suffix in (("schemas", ".yml"), ("projections", ".sql")):
        for path in (REPO / folder).rglob("*" + suffix):
            assert f"cairn/{folder}/{path.relative_to(REPO / folder)}" in names, path


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
