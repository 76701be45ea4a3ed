"""`cairn serve` as operators run it: JSON log lines, and a clear refusal when it cannot start."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import taskcluster

from tests.acceptance.queue_helpers import task_definition
from tests.conftest import ROOT_TOKEN, SECRET_KEY, free_port


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CAIRN_", "TASKCLUSTER_"))}
    env.update(
        CAIRN_DATABASE_URL=f"sqlite:///{tmp_path / 'cairn.db'}",
        CAIRN_DATA_DIR=str(tmp_path / "data"),
        CAIRN_SECRET_KEY=SECRET_KEY,
        CAIRN_ROOT_ACCESS_TOKEN=ROOT_TOKEN,
    )
    env.update(extra)
    return env


def _serve(tmp_path: Path, **extra: str) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    root_url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "cairn.cli", "serve", "--port", str(port)],
        env=_env(tmp_path, CAIRN_ROOT_URL=root_url, **extra),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    give_up = time.monotonic() + 30
    while time.monotonic() < give_up and process.poll() is None:
        try:
            if httpx.get(root_url + "/api/auth/v1/__lbheartbeat__").status_code == 200:
                return process, root_url
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError(f"cairn serve did not start: {process.communicate()}")


def _stop(process: subprocess.Popen[str]) -> tuple[str, str]:
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    assert process.returncode in (0, -signal.SIGTERM), err  # uvicorn ends as the signal asked
    return out, err


def test_every_log_line_is_json_with_the_request_fields(tmp_path):
    process, root_url = _serve(tmp_path, CAIRN_LOG_FORMAT="json")
    options = {"rootUrl": root_url, "credentials": {"clientId": "static/root", "accessToken": ROOT_TOKEN},
               "maxRetries": 0}
    try:
        taskcluster.Auth(options).ping()
        task_id = taskcluster.slugId()
        taskcluster.Queue(options).createTask(task_id, task_definition())
        assert httpx.get(root_url + "/api/queue/v1/no-such-route").status_code == 404
    finally:
        out, err = _stop(process)
    assert out == ""
    lines = [json.loads(line) for line in err.splitlines() if line.strip()]  # every line parses
    assert lines
    for line in lines:
        assert set(line) == {"time", "level", "severity", "logger", "message", "pid", "hostname", "fields"}, line
        assert line["time"].endswith("Z") and isinstance(line["fields"], dict)
    requests = [line for line in lines if line["logger"] == "cairn.requests"]
    by_endpoint = {line["fields"]["endpoint"]: line for line in requests}
    ping = by_endpoint["ping"]["fields"]
    assert ping["clientId"] == "static/root"
    assert ping["service"] == "auth"
    assert ping["status"] == 200
    assert ping["duration"] > 0
    assert len(ping["requestId"]) == 32
    assert by_endpoint["createTask"]["fields"]["status"] == 200
    assert by_endpoint["unrouted"]["fields"]["status"] == 404
    assert by_endpoint["unrouted"]["fields"]["clientId"] == "anonymous"
    # uvicorn's own lines come through the same formatter.
    assert any(line["logger"].startswith("uvicorn") for line in lines)


def test_logs_are_readable_text_by_default(tmp_path):
    process, root_url = _serve(tmp_path)
    try:
        httpx.get(root_url + "/api/auth/v1/ping")
    finally:
        _, err = _stop(process)
    assert "GET /api/auth/v1/ping 200" in err
    assert not err.lstrip().startswith("{")


def test_serve_refuses_to_start_without_its_database(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "cairn.cli", "serve", "--port", str(free_port())],
        env=_env(tmp_path, CAIRN_DATABASE_URL="postgresql://postgres:hunter2@127.0.0.1:9/cairn"),
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 1
    assert "Error: cannot reach the database at postgresql://postgres:***@127.0.0.1:9/cairn" in done.stderr
    assert "hunter2" not in done.stderr + done.stdout
    assert "Traceback" not in done.stderr


def test_serve_refuses_to_start_without_rabbitmq_when_pulse_is_configured(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "cairn.cli", "serve", "--port", str(free_port())],
        env=_env(tmp_path, CAIRN_AMQP_URL="amqp://guest:hunter2@127.0.0.1:9/"),
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 1
    assert "Error: cannot reach RabbitMQ at amqp://guest:***@127.0.0.1:9/ (CAIRN_AMQP_URL)" in done.stderr
    assert "hunter2" not in done.stderr + done.stdout


def test_an_unknown_log_format_is_refused(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "cairn.cli", "serve", "--port", str(free_port())],
        env=_env(tmp_path, CAIRN_LOG_FORMAT="xml"), capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 1
    assert "CAIRN_LOG_FORMAT must be one of text, json" in done.stderr
