"""Chain of trust end to end: a signing ``cairn worker`` process, and ``cairn task verify`` as a reader runs it.

The worker signs what its run uploaded; ``cairn task verify`` accepts the
run as it was left, and refuses it once an artifact's stored data is
replaced (as someone with access to the storage could), once the signature
is altered, or with another worker's key. Artifacts' content types come
from the payload or from the file's name.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import taskcluster
import taskcluster.download
from taskcluster.exceptions import ObjectHashVerificationError

from cairn.domain.queue.artifacts import object_name
from tests.acceptance.queue_helpers import TASK_QUEUE, task_definition
from tests.conftest import LiveServer

RESOLVED = ("completed", "failed", "exception")
COT_FILES = ("public/chain-of-trust.json", "public/chain-of-trust.json.sig", "public/logs/certified.log")


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"claim_timeout": 30, "reaper_interval": 0.5, "anonymous_role": "public"}


@pytest.fixture
def server(runtime: Any) -> Iterator[LiveServer]:
    live = LiveServer(runtime)
    live.server.config.timeout_graceful_shutdown = 0.1
    live.start()
    yield live
    live.stop()


def cairn(server: LiveServer, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.update(
        TASKCLUSTER_ROOT_URL=server.root_url,
        TASKCLUSTER_CLIENT_ID="static/root",
        TASKCLUSTER_ACCESS_TOKEN=server.options()["credentials"]["accessToken"],
    )
    return subprocess.run([sys.executable, "-m", "cairn.cli", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture
def start_worker(server: LiveServer, tmp_path: Path) -> Iterator[Any]:
    started: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(*extra: str) -> subprocess.Popen[bytes]:
        log_path = tmp_path / f"worker-{len(started)}.log"
        env = dict(os.environ)
        env.update(
            TASKCLUSTER_ROOT_URL=server.root_url,
            TASKCLUSTER_CLIENT_ID="static/root",
            TASKCLUSTER_ACCESS_TOKEN=server.options()["credentials"]["accessToken"],
        )
        command = [sys.executable, "-m", "cairn.cli", "worker", "--task-queue", TASK_QUEUE,
                   "--worker-group", "tests", "--worker-id", "w1",
                   "--work-dir", str(tmp_path / f"work-{len(started)}"), *extra]
        with log_path.open("wb") as out:
            process = subprocess.Popen(command, env=env, stdout=out, stderr=out)
        started.append((process, log_path))
        return process

    yield start
    for process, log_path in started:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        print(log_path.read_text(errors="replace"))  # shown when the test fails


def create(queue: Any, payload: dict[str, Any]) -> str:
    task_id = taskcluster.slugId()
    queue.createTask(task_id, task_definition(payload=payload))
    return task_id


def resolved(queue: Any, task_id: str, timeout: float = 60) -> dict[str, Any]:
    give_up = time.monotonic() + timeout
    while True:
        status = queue.status(task_id)["status"]
        if status["state"] in RESOLVED:
            return status
        assert time.monotonic() < give_up, f"task {task_id} is still {status['state']}"
        time.sleep(0.1)


def artifact_bytes(queue: Any, task_id: str, name: str) -> bytes:
    data, _ = taskcluster.download.downloadArtifactToBuf(taskId=task_id, runId=0, name=name, queueService=queue)
    return bytes(data)


def replace_stored_data(runtime: Any, task_id: str, name: str, data: bytes) -> None:
    """Overwrite an artifact's bytes where the object service keeps them, behind its back."""
    found = runtime.storage_reads.object(object_name(task_id, 0, name))
    runtime.blob_store.put(found["blobKey"], data)


@pytest.fixture
def signing_key(server: LiveServer, tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "worker-key"
    generated = cairn(server, "worker", "--generate-key", str(path))
    assert generated.returncode == 0, generated.stderr
    public = generated.stdout.strip()
    assert len(base64.b64decode(path.read_text(), validate=True)) == 32  # generic-worker's format: the seed
    assert len(base64.b64decode(public, validate=True)) == 32
    return path, public


TASK_SCRIPT = (
    "mkdir -p out/dist/sub && printf '{\"ok\": true}' > out/result.json && echo built > out/dist/build.log"
    " && head -c 20000 /dev/urandom > out/dist/sub/blob.bin && echo 'a,b' > out/table.dat"
    """ && echo '{"image": {"digest": "sha256:abc"}, "taskId": "forged"}' > chain-of-trust-additional-data.json"""
    " && echo done"
)
DECLARED = [
    {"type": "file", "name": "public/result.json", "path": "out/result.json"},
    {"type": "directory", "name": "public/dist", "path": "out/dist"},
    {"type": "file", "name": "public/table.csv", "path": "out/table.dat", "contentType": "text/csv"},
]


def test_a_signed_run_verifies_and_fails_to_once_an_artifact_or_the_signature_is_replaced(
    server, runtime, start_worker, signing_key, tmp_path
):
    key_path, public = signing_key
    (tmp_path / "public-key").write_text(public)
    start_worker("--ed25519-signing-key", str(key_path))
    queue = server.client("queue")
    task_id = create(queue, {"command": TASK_SCRIPT, "artifacts": DECLARED, "features": {"chainOfTrust": True}})
    status = resolved(queue, task_id)
    assert status["state"] == "completed", artifact_bytes(queue, task_id, "public/logs/live.log").decode()

    artifacts = {a["name"]: a for a in queue.listArtifacts(task_id, "0")["artifacts"]}
    assert set(COT_FILES) <= set(artifacts)
    document = artifact_bytes(queue, task_id, "public/chain-of-trust.json")
    cot = json.loads(document)
    assert cot["chainOfTrustVersion"] == 1
    assert (cot["taskId"], cot["runId"], cot["workerGroup"], cot["workerId"]) == (task_id, 0, "tests", "w1")
    assert cot["task"] == queue.task(task_id)
    assert set(cot["environment"]) >= {"privateIpAddress", "instanceId", "instanceType", "region"}
    assert cot["image"] == {"digest": "sha256:abc"}  # the task's additions, under the worker's own fields
    listed = {"public/result.json", "public/dist/build.log", "public/dist/sub/blob.bin", "public/table.csv",
              "public/logs/certified.log"}
    assert set(cot["artifacts"]) == listed
    for name in listed:
        data = artifact_bytes(queue, task_id, name)  # the client checks the object service's hashes too
        assert cot["artifacts"][name]["sha256"] == hashlib.sha256(data).hexdigest()
    assert "done" in artifact_bytes(queue, task_id, "public/logs/certified.log").decode()

    # The content types: given, or from the file's name.
    types = {name: artifacts[name]["contentType"] for name in listed}
    assert types == {
        "public/result.json": "application/json",
        "public/dist/build.log": "text/plain",
        "public/dist/sub/blob.bin": "application/octet-stream",
        "public/table.csv": "text/csv",
        "public/logs/certified.log": "text/plain; charset=utf-8",
    }
    fetched = httpx.get(f"{server.root_url}/api/queue/v1/task/{task_id}/artifacts/public/result.json",
                        follow_redirects=True)
    assert (fetched.status_code, fetched.headers["content-type"]) == (200, "application/json")

    verified = cairn(server, "task", "verify", task_id, "--public-key", str(tmp_path / "public-key"))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "verified" in verified.stderr + verified.stdout
    assert "FAIL" not in verified.stdout
    assert "ok   signature" in verified.stdout
    # A priority changed since the run is no reason to doubt it.
    queue.changeTaskPriority(task_id, {"newPriority": "highest"})
    assert queue.task(task_id)["priority"] == "highest" != cot["task"]["priority"]
    as_json = cairn(server, "task", "verify", task_id, "--worker-key", str(key_path), "--json")
    assert as_json.returncode == 0, as_json.stderr
    report = json.loads(as_json.stdout)
    assert report["ok"] is True and report["runId"] == 0
    assert {c["check"] for c in report["checks"]} >= {f"{n}: data matches the signed sha256" for n in listed}

    # Another worker's key: the signature does not verify.
    other = tmp_path / "other-key"
    assert cairn(server, "worker", "--generate-key", str(other)).returncode == 0
    refused = cairn(server, "task", "verify", task_id, "--worker-key", str(other))
    assert refused.returncode == 1
    assert "FAIL signature" in refused.stdout

    # An artifact's data replaced where it is stored: its hash no longer matches.
    replace_stored_data(runtime, task_id, "public/dist/sub/blob.bin", b"something else entirely")
    # Downloads check it too: the client against the object service's record, or the server as it sends.
    with pytest.raises(ObjectHashVerificationError):
        artifact_bytes(queue, task_id, "public/dist/sub/blob.bin")
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{server.root_url}/api/queue/v1/task/{task_id}/artifacts/public/dist/sub/blob.bin",
                  follow_redirects=True).raise_for_status()
    refused = cairn(server, "task", "verify", task_id, "--public-key", str(tmp_path / "public-key"))
    assert refused.returncode == 1, refused.stdout
    failures = [line for line in refused.stdout.splitlines() if "FAIL" in line]
    assert failures and all("public/dist/sub/blob.bin" in line for line in failures), refused.stdout
    assert "NOT verified" in refused.stderr

    # The signature altered: it no longer verifies (nor matches the object service's record).
    signature = artifact_bytes(queue, task_id, "public/chain-of-trust.json.sig")
    replace_stored_data(runtime, task_id, "public/chain-of-trust.json.sig", bytes([signature[0] ^ 1]) + signature[1:])
    refused = cairn(server, "task", "verify", task_id, "--public-key", str(tmp_path / "public-key"))
    assert refused.returncode == 1
    assert "FAIL signature" in refused.stdout
    assert "FAIL public/chain-of-trust.json.sig: data matches the object service's sha256" in refused.stdout


def test_verify_refuses_a_task_without_a_chain_of_trust(server, start_worker, signing_key):
    key_path, _ = signing_key
    start_worker("--ed25519-signing-key", str(key_path))
    queue = server.client("queue")
    task_id = create(queue, {"command": "echo unsigned"})
    assert resolved(queue, task_id)["state"] == "completed"
    refused = cairn(server, "task", "verify", task_id, "--worker-key", str(key_path))
    assert refused.returncode == 1
    assert "FAIL public/chain-of-trust.json" in refused.stdout
    missing_key = cairn(server, "task", "verify", task_id)
    assert missing_key.returncode == 2 and "--public-key" in missing_key.stderr


def test_chain_of_trust_needs_a_signing_worker_and_its_names(server, start_worker, signing_key, tmp_path):
    queue = server.client("queue")
    start_worker()  # no key: the feature is off
    task_id = create(queue, {"command": "echo hi", "features": {"chainOfTrust": True}})
    status = resolved(queue, task_id)
    assert (status["state"], status["runs"][0]["reasonResolved"]) == ("exception", "malformed-payload")
    log = artifact_bytes(queue, task_id, "public/logs/live.log").decode()
    assert "feature 'Chain of Trust', but it's not enabled on this worker" in log


def test_a_payload_may_not_declare_the_chain_of_trust_artifacts(server, start_worker, signing_key):
    key_path, _ = signing_key
    start_worker("--ed25519-signing-key", str(key_path))
    queue = server.client("queue")
    task_id = create(queue, {
        "command": "echo '{}' > forged.json",
        "artifacts": [{"type": "file", "name": "public/chain-of-trust.json", "path": "forged.json"}],
        "features": {"chainOfTrust": True},
    })
    status = resolved(queue, task_id)
    assert (status["state"], status["runs"][0]["reasonResolved"]) == ("exception", "malformed-payload")
    assert "public/chain-of-trust.json" in artifact_bytes(queue, task_id, "public/logs/live.log").decode()


def test_a_worker_with_an_unreadable_signing_key_does_not_start(server, start_worker, tmp_path):
    (tmp_path / "bad-key").write_text("not a key")
    process = start_worker("--ed25519-signing-key", str(tmp_path / "bad-key"))
    assert process.wait(30) == 1
    missing = start_worker("--ed25519-signing-key", str(tmp_path / "no-such-key"))
    assert missing.wait(30) == 1
    output = (tmp_path / "worker-0.log").read_text() + (tmp_path / "worker-1.log").read_text()
    assert output.count("Missing ED25519 Private Key") == 2
