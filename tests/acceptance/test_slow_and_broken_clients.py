"""Clients that are slow, leave half-way or do not speak HTTP: answered in Taskcluster's format, never held.

These run ``cairn serve`` itself, as a process, with one-second deadlines
for headers and bodies and no root URL set, and talk to it over raw
sockets where the official client could not misbehave enough.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
import taskcluster

from tests.conftest import ROOT_TOKEN, SECRET_KEY, free_port

DEADLINE = 1.0


class Served:
    def __init__(self, port: int, log: Path):
        self.port = port
        self.root_url = f"http://127.0.0.1:{port}"
        self.log = log

    def send(self, data: bytes, wait: float = 0.0) -> bytes:
        """Send ``data``, keep the connection open ``wait`` seconds, and read what comes back until it closes."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=DEADLINE + 10) as s:
            s.sendall(data)
            time.sleep(wait)
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks)

    def ping_seconds(self) -> float:
        start = time.monotonic()
        httpx.get(self.root_url + "/api/queue/v1/ping", timeout=10).raise_for_status()
        return time.monotonic() - start


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAIRN_")}
    env.update(
        CAIRN_DATABASE_URL=f"sqlite:///{tmp_path / 'cairn.db'}",
        CAIRN_DATA_DIR=str(tmp_path / "data"),
        CAIRN_SECRET_KEY=SECRET_KEY,
        CAIRN_ROOT_ACCESS_TOKEN=ROOT_TOKEN,
        CAIRN_HEADER_TIMEOUT=str(DEADLINE),
        CAIRN_BODY_TIMEOUT=str(DEADLINE),
        CAIRN_MAX_LONG_POLLS="1",
        CAIRN_LOG_LEVEL="info",
    )
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "cairn.cli", "serve", "--port", str(port)], env=env, stdout=out, stderr=out
        )
    try:
        give_up = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/api/queue/v1/ping", timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < give_up and process.poll() is None, log.read_text()
                time.sleep(0.05)
        yield Served(port, log)
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def taskcluster_error(response: bytes) -> tuple[int, dict]:
    head, _, body = response.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert b"content-type: application/json" in head.lower(), head
    error = orjson.loads(body)
    assert set(error) == {"code", "message", "requestInfo"}, error
    return status, error


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"BREW /api/queue/v1/ping HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /api/auth/v1/scopes/expand HTTP/1.1\r\nHost: x\r\nContent-Length: many\r\n\r\n{}",
        b"GET /api/queue/v1/ping?" + b"q" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    ],
    ids=["unknown-method", "bad-content-length", "url-over-64kb"],
)
def test_what_the_http_parser_refuses_is_answered_as_taskcluster_does(served, request_bytes):
    status, error = taskcluster_error(served.send(request_bytes))
    assert (status, error["code"]) == (400, "MalformedPayload")
    assert len(error["message"]) < 1000


def test_headers_and_bodies_that_never_finish_are_timed_out_with_a_408(served):
    start = time.monotonic()
    status, error = taskcluster_error(served.send(b"GET /api/queue/v1/ping HTTP/1.1\r\nHost: x\r\n"))
    assert (status, error["code"]) == (408, "RequestTimeout")
    assert "headers" in error["message"]

    drip = b"POST /api/auth/v1/scopes/expand HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"scopes\""
    status, error = taskcluster_error(served.send(drip))
    assert (status, error["code"]) == (408, "RequestTimeout")
    assert "body" in error["message"]
    assert time.monotonic() - start < 4 * (DEADLINE + 1)


def test_a_slowloris_body_is_cut_off_however_steadily_it_drips(served):
    with socket.create_connection(("127.0.0.1", served.port), timeout=DEADLINE + 10) as s:
        s.sendall(b"POST /api/auth/v1/scopes/expand HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
        start, answer = time.monotonic(), b""
        try:
            while time.monotonic() - start < 10 * DEADLINE:
                s.sendall(b" ")
                time.sleep(DEADLINE / 5)
        except OSError:  # the server closed the connection
            pass
        answer = s.recv(65536)
    assert time.monotonic() - start < 5 * DEADLINE
    status, error = taskcluster_error(answer)
    assert (status, error["code"]) == (408, "RequestTimeout")


def test_half_requests_by_the_hundred_are_closed_and_ping_goes_on(served):
    sockets = []
    try:
        for i in range(200):
            s = socket.create_connection(("127.0.0.1", served.port), timeout=DEADLINE + 10)
            s.sendall(b"POST /api/auth/v1/scopes/expand HTTP/1.1\r\nHost: x\r\n" if i % 2 else b"GE")
            sockets.append(s)
        assert served.ping_seconds() < 1.0
        time.sleep(DEADLINE + 1)
        for s in sockets:
            assert s.recv(65536).startswith(b"HTTP/1.1 408"), "a half request was left open"
    finally:
        for s in sockets:
            s.close()


def test_a_client_hanging_up_mid_body_is_no_incident(served):
    for _ in range(5):
        with socket.create_connection(("127.0.0.1", served.port)) as s:
            s.sendall(b"POST /api/auth/v1/scopes/expand HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"sco")
            time.sleep(0.1)
    assert served.ping_seconds() < 1.0
    time.sleep(0.5)
    log = served.log.read_text()
    assert "ERROR" not in log and "Traceback" not in log, log


def test_long_polls_past_the_bound_get_a_503_in_taskcluster_format(served):
    queue = taskcluster.Queue({"rootUrl": served.root_url, "maxRetries": 0,
                               "credentials": {"clientId": "static/root", "accessToken": ROOT_TOKEN}})
    claim = {"workerGroup": "g", "workerId": "w", "tasks": 1}
    waiting = threading.Thread(target=lambda: queue.claimWork("cairn-test/bound", claim), daemon=True)
    waiting.start()
    time.sleep(0.5)
    with pytest.raises(taskcluster.exceptions.TaskclusterRestFailure) as refused:
        queue.claimWork("cairn-test/bound", {**claim, "workerId": "w2"})
    assert refused.value.status_code == 503
    assert refused.value.body["code"] == "ServiceUnavailable"
    assert served.ping_seconds() < 1.0


def test_without_a_root_url_the_urls_handed_out_name_the_port_served(served):
    objects = taskcluster.Object({"rootUrl": served.root_url, "maxRetries": 0,
                                  "credentials": {"clientId": "static/root", "accessToken": ROOT_TOKEN}})
    expires = taskcluster.stringDate(taskcluster.fromNow("1 day"))
    upload = objects.createUpload("served/port", {
        "projectId": "p", "uploadId": taskcluster.slugId(), "expires": expires,
        "proposedUploadMethods": {"putUrl": {"contentType": "text/plain", "contentLength": 2}},
    })
    assert upload["uploadMethod"]["putUrl"]["url"].startswith(served.root_url + "/")
