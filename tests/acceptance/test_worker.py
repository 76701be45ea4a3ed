"""The reference worker end to end: a real ``cairn worker`` process runs tasks from a live server.

Each test starts the worker as a subprocess with the standard TASKCLUSTER_*
variables, creates tasks with the official client and watches them resolve.
Claims last 3 seconds here, so the worker reclaims about every second, and
notices a cancelled task within about that long.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import taskcluster
import taskcluster.download

from tests.acceptance.queue_helpers import TASK_QUEUE, task_definition
from tests.acceptance.waiting import wait_for
from tests.acceptance.worker_process import StartedWorkers
from tests.conftest import LiveServer

RESOLVED = ("completed", "failed", "exception")

@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    # Short claims, reaped at once when they lapse: a worker that failed to reclaim would show.
    return {"claim_timeout": 3, "reaper_interval": 0.2}


#: For the tests that read logs as a browser would, without credentials: a public deployment.
PUBLIC = pytest.mark.parametrize(
    "settings_overrides", [{"claim_timeout": 3, "reaper_interval": 0.2, "anonymous_role": "public"}]
)


@pytest.fixture
def server(runtime: Any) -> Iterator[LiveServer]:
    """The live server, stopping without waiting for a stopped worker's claimWork long-poll.

    That request's handler only notices its client is gone when its wait ends
    (up to 5 s), and uvicorn would wait for it.
    """
    live = LiveServer(runtime)
    live.server.config.timeout_graceful_shutdown = 0.1
    live.start()
    yield live
    live.stop()


@pytest.fixture
def start_worker(server, tmp_path):
    workers = StartedWorkers(server, tmp_path, TASK_QUEUE, capacity=1)
    yield workers.start
    workers.terminate()


def create(queue: Any, payload: Any, **overrides: Any) -> str:
    task_id = overrides.pop("taskId", None) or taskcluster.slugId()
    queue.createTask(task_id, task_definition(payload=payload, **overrides))
    return task_id


def resolved(queue: Any, task_id: str, runs: int = 1) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        status = queue.status(task_id)["status"]
        done = len(status["runs"]) >= runs and status["runs"][runs - 1]["state"] in RESOLVED
        return status if done and status["state"] in RESOLVED else None

    return wait_for(check, what=f"task {task_id} to resolve")


def task_log(queue: Any, task_id: str, run_id: int = 0) -> str:
    data, _ = taskcluster.download.downloadArtifactToBuf(
        taskId=task_id, runId=run_id, name="public/logs/live.log", queueService=queue
    )
    return bytes(data).decode()


def test_a_task_that_exits_0_completes_and_its_log_holds_the_output(server, start_worker):
    queue = server.client("queue")
    worker = start_worker()
    task_id = create(queue, {"command": [
        ["echo", "hello"],
        ["sh", "-c", 'echo "task $TASK_ID run $RUN_ID at $TASKCLUSTER_ROOT_URL"'],
        ["sh", "-c", 'echo "worker credentials: ${TASKCLUSTER_ACCESS_TOKEN:-none}"'],
    ]})

    status = resolved(queue, task_id)
    assert status["state"] == "completed"
    log = task_log(queue, task_id)
    lines = log.splitlines()
    assert lines[0].endswith(f"Task {task_id}, run 0")
    assert "Worker tests/w1 on cairn-test/worker" in lines[1]
    assert "hello\n" in log
    assert f"task {task_id} run 0 at {server.root_url}\n" in log
    assert "worker credentials: none\n" in log
    assert "Exit status 0 after" in lines[-2]
    assert "Resolving as completed after" in lines[-1]
    artifacts = {a["name"]: a for a in queue.listArtifacts(task_id, "0")["artifacts"]}
    assert artifacts["public/logs/live.log"]["storageType"] == "link"
    assert artifacts["public/logs/live_backing.log"]["storageType"] == "object"
    # The task's directory is gone once it is done.
    wait_for(lambda: not any(worker.work_dir.iterdir()), what="the task directory to be removed")
    # The worker still serves the finished log for a while, but stops at once all the same.
    stopping = time.monotonic()
    assert worker.terminate() == 0
    assert time.monotonic() - stopping < 10


def test_exit_statuses_decide_how_runs_resolve(server, start_worker):
    queue = server.client("queue")
    start_worker(capacity=4)
    lasting = create(queue, {"command": "sleep 3.5"})  # longer than a claim lasts: reclaimed
    failing = create(queue, {"command": "echo failing; exit 1"})
    malformed = create(queue, {"command": [["true"]], "maxRunTime": "ten"})
    # Exits 3 (listed as retryable) on the first run, 0 on the retry.
    flaky = create(queue, {"command": 'test "$RUN_ID" = 0 && exit 3; exit 0', "onExitStatus": {"retry": [3]}})

    assert resolved(queue, failing)["state"] == "failed"
    assert "Exit status 1 after" in task_log(queue, failing)

    status = resolved(queue, malformed)
    assert (status["state"], status["runs"][0]["reasonResolved"]) == ("exception", "malformed-payload")
    assert "payload.maxRunTime: 'ten' is not of type 'integer'" in task_log(queue, malformed)

    status = resolved(queue, flaky, runs=2)
    assert [(r["state"], r["reasonResolved"]) for r in status["runs"]] == [
        ("exception", "intermittent-task"),
        ("completed", "completed"),
    ]
    assert status["runs"][1]["reasonCreated"] == "retry"
    assert "listed in onExitStatus.retry" in task_log(queue, flaky, 0)

    status = resolved(queue, lasting)
    assert [(r["state"], r["reasonResolved"]) for r in status["runs"]] == [("completed", "completed")]


def test_a_task_past_its_max_run_time_is_killed_and_fails(server, start_worker):
    queue = server.client("queue")
    start_worker()
    task_id = create(queue, {"command": "echo started; sleep 30", "maxRunTime": 1})

    started = time.monotonic()
    assert resolved(queue, task_id)["state"] == "failed"
    assert time.monotonic() - started < 10
    log = task_log(queue, task_id)
    assert "started\n" in log
    assert "maxRunTime of 1 s exceeded: the task was killed" in log


def test_declared_artifacts_are_uploaded_intact_and_a_missing_one_fails_the_run(server, start_worker, tmp_path):
    queue = server.client("queue")
    start_worker(capacity=2)
    source = tmp_path / "source.bin"
    source.write_bytes(os.urandom(100_000))  # larger than an inline upload
    task_id = create(queue, {
        "command": f"mkdir -p out/docs/deep && cp {source} out/result.bin"
                   " && echo note > out/docs/note.txt && echo deeper > out/docs/deep/more.txt",
        "artifacts": [
            {"name": "public/result.bin", "path": "out/result.bin", "type": "file"},
            {"name": "public/docs", "path": "out/docs", "type": "directory"},
        ],
    })
    missing = create(queue, {
        "command": "true",
        "artifacts": [{"name": "public/missing.txt", "path": "missing.txt", "type": "file"}],
    })

    assert resolved(queue, task_id)["state"] == "completed"
    # downloadArtifactToBuf checks the data against the hashes the upload recorded.
    data, _ = taskcluster.download.downloadArtifactToBuf(
        taskId=task_id, runId=0, name="public/result.bin", queueService=queue
    )
    assert bytes(data) == source.read_bytes()
    note, content_type = taskcluster.download.downloadArtifactToBuf(
        taskId=task_id, runId=0, name="public/docs/note.txt", queueService=queue
    )
    assert (bytes(note), content_type) == (b"note\n", "text/plain")
    names = {a["name"] for a in queue.listArtifacts(task_id, "0")["artifacts"]}
    assert {"public/result.bin", "public/docs/note.txt", "public/docs/deep/more.txt"} <= names

    assert resolved(queue, missing)["state"] == "failed"
    assert "Artifact public/missing.txt: no file missing.txt" in task_log(queue, missing)
    assert queue.artifact(missing, "0", "public/missing.txt") == {
        "storageType": "error",
        "reason": "file-missing-on-worker",
        "message": "no file missing.txt",
    }


def _pid_from(path: Path) -> int:
    return int(wait_for(lambda: path.exists() and path.read_text().strip(), what=f"{path}"))


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_a_cancelled_task_is_killed_within_seconds(server, start_worker, tmp_path):
    queue = server.client("queue")
    start_worker()
    pid_file = tmp_path / "task.pid"
    task_id = create(queue, {"command": f"echo $$ > {pid_file}; exec sleep 60"})
    pid = _pid_from(pid_file)

    queue.cancelTask(task_id)
    started = time.monotonic()
    wait_for(lambda: _gone(pid), timeout=5, what=f"process {pid} to be killed")
    assert time.monotonic() - started < 5
    status = queue.status(task_id)["status"]
    assert (status["state"], status["runs"][0]["reasonResolved"]) == ("exception", "canceled")

    # Read live.log again and again, from the live log through the hand-over to the upload:
    # whichever it finds, every read gets the whole log (never a 404).
    def read_complete_log() -> bool:
        uploaded = _live_log_storage(queue, task_id) == "link"
        log = _log_or_empty(queue, task_id)
        if log:
            assert "The queue resolved the run as exception (canceled)" in log
            assert log.splitlines()[-1].endswith("the run is no longer this worker's to report")
        return uploaded and bool(log)

    wait_for(read_complete_log, what="the log upload")


def _log_or_empty(queue: Any, task_id: str) -> str:
    try:
        return task_log(queue, task_id)
    except taskcluster.exceptions.TaskclusterFailure:
        return ""


def _live_log_storage(queue: Any, task_id: str) -> str | None:
    artifacts = {a["name"]: a for a in queue.listArtifacts(task_id, "0")["artifacts"]}
    return artifacts.get("public/logs/live.log", {}).get("storageType")


@PUBLIC
def test_the_live_log_can_be_followed_while_the_task_runs(server, start_worker):
    queue = server.client("queue")
    start_worker()
    task_id = create(queue, {"command": "echo first; sleep 2; echo second"})
    wait_for(lambda: queue.status(task_id)["status"]["state"] == "running", what="the task to start")

    reference = wait_for(lambda: _content_or_none(queue, task_id), what="the live log")
    assert reference["storageType"] == "reference"
    seen = []
    # As a browser would: the queue redirects to the live log on Cairn.
    url = f"{server.root_url}/api/queue/v1/task/{task_id}/runs/0/artifacts/public/logs/live.log"
    with httpx.stream("GET", url, follow_redirects=True, timeout=10) as response:
        assert str(response.url) == reference["url"]
        assert response.headers["content-type"] == "text/plain; charset=utf-8"
        for line in response.iter_lines():
            seen.append(line)
            if line == "first":
                # Seen while the task still sleeps before its second line.
                assert queue.status(task_id)["status"]["state"] == "running"
                assert "second" not in seen
    assert seen.index("first") < seen.index("second")
    assert "Exit status 0 after" in seen[-2]
    assert "Resolving as completed after" in seen[-1]
    assert resolved(queue, task_id)["state"] == "completed"
    # Afterwards the same name leads to the uploaded copy.
    assert "first\nsecond\n" in task_log(queue, task_id)


def _content_or_none(queue: Any, task_id: str) -> dict[str, Any] | None:
    try:
        return queue.artifact(task_id, "0", "public/logs/live.log")
    except taskcluster.exceptions.TaskclusterRestFailure as e:
        if e.status_code == 404:
            return None
        raise


def test_a_finished_log_is_still_served_whole_at_its_live_log_address(server, start_worker, tmp_path):
    """A reader who resolved live.log just before the worker pointed it at the upload gets the whole log.

    Such a reader is sent to the live log's address on Cairn after the run has ended: Cairn keeps
    the streamed log there for a while (then that address leads to the upload, see test_live_logs).
    """
    queue = server.client("queue")
    worker = start_worker()
    go = tmp_path / "go"
    task_id = create(queue, {"command": f"echo first; while [ ! -e {go} ]; do sleep 0.05; done; echo last"})
    reference = wait_for(lambda: _content_or_none(queue, task_id), what="the live log")
    assert reference["storageType"] == "reference"
    go.touch()

    assert resolved(queue, task_id)["state"] == "completed"
    wait_for(lambda: not any(worker.work_dir.iterdir()), what="the task directory to be removed")
    assert _live_log_storage(queue, task_id) == "link"
    response = httpx.get(reference["url"], timeout=10)
    assert response.status_code == 200
    uploaded = task_log(queue, task_id)
    assert "first\nlast\n" in uploaded
    assert "Resolving as completed after" in uploaded.splitlines()[-1]
    assert response.text == uploaded


def test_sigterm_stops_the_worker_and_the_task_retries_elsewhere(server, start_worker, tmp_path):
    queue = server.client("queue")
    worker = start_worker()
    pid_file = tmp_path / "task.pid"
    # Signalled as soon as the task has written its first line, whether or not the worker has read it yet.
    task_id = create(queue, {"command": f"echo working; echo $$ > {pid_file}; exec sleep 60"})
    pid = _pid_from(pid_file)

    assert worker.terminate() == 0
    assert _gone(pid)
    status = queue.status(task_id)["status"]
    assert [(r["state"], r.get("reasonResolved")) for r in status["runs"]] == [
        ("exception", "worker-shutdown"),
        ("pending", None),
    ]
    log = task_log(queue, task_id)
    assert "working\n" in log
    assert "The worker is shutting down" in log


@PUBLIC
def test_all_a_task_wrote_before_the_worker_stopped_it_is_in_its_log(server, start_worker, tmp_path):
    """Output written within milliseconds of the worker's SIGTERM is never lost.

    The task signals its worker itself right after its first line, then writes numbered lines until
    it is killed, noting in a file each number once its line is written. The signal lands while the
    worker may still be starting the process or reading its pipe; whichever, the uploaded log holds
    the first line and every line noted, in order. A worker that dropped such output did so in most
    attempts, so ten attempts (five workers at a time, each on a queue of its own) catch it.
    """
    queue = server.client("queue")
    give_up = time.monotonic() + 20
    for first in (0, 5):
        attempts = []
        for attempt in range(first, first + 5):
            task_queue = f"cairn-test/stopped-{attempt}"
            worker = start_worker(task_queue=task_queue)
            noted = tmp_path / f"noted-{attempt}"
            task_id = create(queue, {
                "command": f'echo first; kill -TERM "$WORKER_PID"; '
                           f'i=0; while i=$((i + 1)); do echo "line $i"; echo $i >> {noted}; done',
                "env": {"WORKER_PID": str(worker.process.pid)},
            }, taskQueueId=task_queue)
            attempts.append((attempt, worker, task_id, noted))
        for attempt, worker, task_id, noted in attempts:
            assert worker.process.wait(30) == 0
            status = queue.status(task_id)["status"]
            assert status["runs"][0]["reasonResolved"] == "worker-shutdown"
            output = [line for line in task_log(queue, task_id).splitlines() if not line.startswith("[cairn-worker ")]
            assert output[:1] == ["first"], f"attempt {attempt}: the first line is missing"
            assert output[1:] == [f"line {n}" for n in range(1, len(output))], f"attempt {attempt}"
            numbers = noted.read_text().split() if noted.exists() else []
            last_noted = int(numbers[-1]) if numbers else 0
            assert len(output) - 1 >= last_noted, f"attempt {attempt}: line {last_noted} was written, not logged"
        if time.monotonic() > give_up:
            break


def test_the_taskcluster_proxy_signs_with_the_task_scopes(server, start_worker):
    queue = server.client("queue")
    start_worker()
    task_id, other_id = taskcluster.slugId(), create(queue, {"command": "true"}, taskQueueId="cairn-test/nobody")
    fetch = (
        "import os, sys, urllib.request, urllib.error\n"
        "for task in sys.argv[1:]:\n"
        "    url = f\"{os.environ['TASKCLUSTER_PROXY_URL']}/queue/v1/task/{task}/status\"\n"
        "    try:\n"
        "        print(task, urllib.request.urlopen(url).status)\n"
        "    except urllib.error.HTTPError as e:\n"
        "        print(task, e.code)\n"
    )
    create(
        queue,
        {"command": [[sys.executable, "-c", fetch, task_id, other_id]], "features": {"taskclusterProxy": True}},
        taskId=task_id,
        scopes=[f"queue:status:{task_id}"],
    )

    assert resolved(queue, task_id)["state"] == "completed"
    log = task_log(queue, task_id)
    assert f"{task_id} 200\n" in log
    assert f"{other_id} 403\n" in log
