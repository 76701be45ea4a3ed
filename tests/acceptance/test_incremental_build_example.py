"""``examples/incremental-build`` end to end: a real server and ``cairn worker`` build a git repository twice.

The repository is the example folder committed into a git repository served
over HTTP on a loopback port (git's "dumb" HTTP protocol: plain files); its
``.taskcluster.yml`` is rendered for a push (the real push delivery, made to
name that repository and commit) by the `.taskcluster.yml` engine, and the
tasks are created as the GitHub consumer creates them. The worker clones the
repository, and the build restores the previous build's workspace through
the index: the first build is fresh, the second rebuilds only what changed.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import taskcluster.download

from cairn.domain.github import tcyml
from cairn.domain.timestamps import utcnow
from tests.acceptance.test_index import wait_for_indexer
from tests.acceptance.test_worker import resolved, task_log
from tests.conftest import LiveServer, free_port
from tests.domain.github.tcyml_support import no_fetch, payload

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "incremental-build"
TASK_QUEUE = "proj-example/ci"
GIT_ENV = {**os.environ, "GIT_AUTHOR_NAME": "Tester", "GIT_AUTHOR_EMAIL": "tester@example.com",
           "GIT_COMMITTER_NAME": "Tester", "GIT_COMMITTER_EMAIL": "tester@example.com"}

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="the example's task clones with git")


@pytest.fixture
def server(runtime: Any) -> Iterator[LiveServer]:
    live = LiveServer(runtime)
    live.server.config.timeout_graceful_shutdown = 0.1
    live.start()
    yield live
    live.stop()


@pytest.fixture
def worker(server: LiveServer, tmp_path: Path) -> Iterator[subprocess.Popen]:
    env = dict(os.environ)
    env.update(TASKCLUSTER_ROOT_URL=server.root_url, TASKCLUSTER_CLIENT_ID="static/root",
               TASKCLUSTER_ACCESS_TOKEN=server.options()["credentials"]["accessToken"])
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "cairn.cli", "worker", "--task-queue", TASK_QUEUE, "--worker-group", "tests",
             "--worker-id", "w1", "--work-dir", str(tmp_path / "work")],
            env=env, stdout=out, stderr=out,
        )
    yield process
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    print(log.read_text(errors="replace"))  # shown when the test fails


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def git_http(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A folder served over HTTP, and its URL."""
    served = tmp_path / "served"
    served.mkdir()
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", free_port()), functools.partial(Quiet, directory=str(served)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=GIT_ENV)
    return done.stdout.strip()


def commit(repo: Path, message: str) -> str:
    """Commit everything and publish it to the served bare repository."""
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "-m", message)
    git(repo, "push", "--quiet", "origin", "master")
    git(Path(git(repo, "remote", "get-url", "origin")), "update-server-info")
    return git(repo, "rev-parse", "HEAD")


def push_to_master(url: str, sha: str) -> tcyml.GithubEvent:
    body = payload("push.none.4")
    body["repository"]["html_url"] = url
    body["before"], body["after"] = body["after"], sha
    body["head_commit"]["id"] = sha
    event = tcyml.interpret("push", body)
    assert event is not None and event.branch == event.default_branch == "master"
    return event


def build(server: LiveServer, repo: Path, url: str, sha: str) -> str:
    """Render the repository's file for a push of ``sha`` and create its task, as the GitHub consumer does."""
    rendered = tcyml.render((repo / ".taskcluster.yml").read_text(), push_to_master(url, sha),
                            root_url=server.root_url, now=utcnow(), fetch_file=no_fetch, id_seed=sha)
    [(task_id, task)] = rendered.tasks
    assert task["routes"] == ["index.proj-example.incremental-build.v1.latest", "statuses"]
    server.client("queue").createTask(task_id, task)
    return task_id


def report(server: LiveServer, task_id: str) -> dict[str, str]:
    data, _ = taskcluster.download.downloadArtifactToBuf(
        taskId=task_id, runId=0, name="public/incremental-build/report.txt", queueService=server.client("queue"))
    summary = bytes(data).decode().split("\n== ", 1)[0]  # the counts, before each output
    return dict(line.split("=", 1) for line in summary.splitlines())


def finished(server: LiveServer, task_id: str) -> str:
    queue = server.client("queue")
    status = resolved(queue, task_id)
    log = task_log(queue, task_id)
    assert status["state"] == "completed", log
    wait_for_indexer(server)
    return log


def test_the_second_build_restores_the_first_ones_workspace_and_rebuilds_only_what_changed(
        server, worker, git_http, tmp_path):
    served, base_url = git_http
    subprocess.run(["git", "init", "--quiet", "--bare", "-b", "master", str(served / "hello.git")], check=True)
    url = f"{base_url}/hello.git"
    repo = tmp_path / "repo"
    shutil.copytree(EXAMPLE, repo)
    git(repo, "init", "--quiet", "-b", "master")
    git(repo, "remote", "add", "origin", str(served / "hello.git"))
    first_sha = commit(repo, "the example")

    first = build(server, repo, url, first_sha)
    log = finished(server, first)
    assert "incremental-build: no previous workspace at proj-example.incremental-build.v1.latest" in log, log
    assert report(server, first) == {"restored-from": "nothing", "built": "3", "reused": "0", "removed": "0"}
    index = server.client("index")
    assert index.findTask("proj-example.incremental-build.v1.latest")["taskId"] == first

    (repo / "src" / "intro.txt").write_text("Cairn keeps every change as an event.\n")
    second = build(server, repo, url, commit(repo, "change one source"))
    log = finished(server, second)
    assert f"incremental-build: restored the workspace of task {first}" in log
    assert "incremental-build: built intro.txt" in log and "built guide/" not in log
    assert report(server, second) == {"restored-from": first, "built": "1", "reused": "2", "removed": "0"}
    assert index.findTask("proj-example.incremental-build.v1.latest")["taskId"] == second

    (repo / "src" / "guide" / "index.txt").unlink()
    third = build(server, repo, url, commit(repo, "remove a source"))
    finished(server, third)
    assert report(server, third) == {"restored-from": second, "built": "0", "reused": "2", "removed": "1"}
