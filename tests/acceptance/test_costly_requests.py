"""Requests built to cost the server much: each answered at a cost bounded by what it asks for.

A huge body is refused before it is checked item by item — unsigned, before
it is even read — and its error does not echo it back; a page of a task group's history reads one page of
events, however large the group.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import mohawk
import pytest
import taskcluster

from cairn.api import body_limits
from tests.acceptance.queue_helpers import task_definition
from tests.acceptance.test_queue_history import CairnQueue
from tests.conftest import ROOT_TOKEN

#: Generous on a busy machine: before the bounds, these took a minute and five seconds.
QUICK_SECONDS = 5.0


@pytest.fixture
def pings(server) -> Iterator[list[float]]:
    """Latencies of pings sent one after another while the test runs."""
    latencies: list[float] = []
    stop = threading.Event()

    def ping() -> None:
        with httpx.Client(base_url=server.root_url, timeout=60) as client:
            while not stop.is_set():
                start = time.monotonic()
                client.get("/api/auth/v1/ping").raise_for_status()
                latencies.append(time.monotonic() - start)
                time.sleep(0.01)

    pinger = threading.Thread(target=ping, daemon=True)
    pinger.start()
    yield latencies
    stop.set()
    pinger.join(60)


def test_a_million_scopes_from_nobody_are_refused_at_once_and_ping_goes_on(server, pings):
    body = b'{"scopes": [' + b",".join([b'"a"'] * 1_000_000) + b"]}"
    wait_for_pings(pings, 1)
    with httpx.Client(timeout=120) as client:
        start = time.monotonic()
        response = client.post(server.root_url + "/api/auth/v1/scopes/expand", content=body,
                               headers={"Content-Type": "application/json"})
        elapsed = time.monotonic() - start
    assert response.status_code == 413, response.text[:500]
    assert response.json()["code"] == "InputTooLarge"
    assert "(unsigned)" in response.json()["message"]
    assert len(response.content) < 4096
    assert elapsed < QUICK_SECONDS
    wait_for_pings(pings, len(pings) + 2)
    assert max(pings) < QUICK_SECONDS


def test_a_million_scopes_from_a_known_client_are_refused_without_checking_each(server):
    body = b'{"scopes": [' + b",".join([b'"a"'] * 1_000_000) + b"]}"
    url = server.root_url + "/api/auth/v1/scopes/expand"
    sender = mohawk.Sender({"id": "static/root", "key": ROOT_TOKEN, "algorithm": "sha256"},
                           url, "POST", content=body, content_type="application/json")
    start = time.monotonic()
    response = httpx.post(url, content=body, timeout=120,
                          headers={"Authorization": sender.request_header, "Content-Type": "application/json"})
    assert time.monotonic() - start < QUICK_SECONDS
    assert response.status_code == 413 and response.json()["code"] == "InputTooLarge"
    assert str(body_limits.MAX_ITEMS) in response.json()["message"]
    assert len(response.content) < 4096


def wait_for_pings(pings: list[float], count: int) -> None:
    deadline = time.monotonic() + 30
    while len(pings) < count:
        assert time.monotonic() < deadline, "no ping answered"
        time.sleep(0.01)


@pytest.mark.parametrize("ids", [1001, 100_000])
def test_too_many_task_queues_are_refused_quickly_without_echoing_them(server, ids):
    body = {"taskQueueIds": [f"prov/type-{i}" for i in range(ids)]}
    start = time.monotonic()
    response = httpx.post(server.root_url + "/api/queue/v1/task-queues/counts", json=body, timeout=120)
    assert time.monotonic() - start < QUICK_SECONDS
    # Past a megabyte, an unsigned body is refused for its size before it is read.
    expected = (400, "InputValidationError") if ids < 10_000 else (413, "InputTooLarge")
    assert (response.status_code, response.json()["code"]) == expected
    assert len(response.content) < 4096, len(response.content)


def test_a_schema_error_deep_in_a_long_list_is_explained_briefly(server):
    scopes = [f"scope-{i}" for i in range(50_000)] + ["not\nprintable"]
    response = httpx.post(server.root_url + "/api/auth/v1/scopes/expand", json={"scopes": scopes}, timeout=120)
    assert response.status_code == 400 and response.json()["code"] == "InputValidationError"
    assert "50000" in response.json()["message"]
    assert len(response.content) < 4096


def test_a_page_of_a_large_groups_history_reads_one_page_of_events(server, monkeypatch):
    queue = CairnQueue(server.options())
    group = taskcluster.slugId()
    tasks = 200
    for _ in range(tasks):
        queue.createTask(taskcluster.slugId(), task_definition(taskGroupId=group))

    mapper = server.runtime.log.mapper
    decode = mapper.to_domain_event
    decoded_by_requests = []

    def counting(record):
        if threading.current_thread().name.startswith("cairn-request"):
            decoded_by_requests.append(record)
        return decode(record)

    monkeypatch.setattr(mapper, "to_domain_event", counting)
    first = queue.taskGroupHistory(group, query={"limit": 1})
    assert len(first["events"]) == 1 and "continuationToken" in first
    assert len(decoded_by_requests) <= 2, f"one page decoded {len(decoded_by_requests)} events"

    decoded_by_requests.clear()
    second = queue.taskGroupHistory(group, query={"limit": 5, "continuationToken": first["continuationToken"]})
    assert len(second["events"]) == 5
    assert len(decoded_by_requests) <= 10, f"one page decoded {len(decoded_by_requests)} events"
    positions = [e["position"] for e in first["events"] + second["events"]]
    assert positions == sorted(set(positions))

    monkeypatch.setattr(mapper, "to_domain_event", decode)
    everything, token = [], None
    while True:
        page = queue.taskGroupHistory(group, query={"limit": 1000, **({"continuationToken": token} if token else {})})
        everything.extend(page["events"])
        token = page.get("continuationToken")
        if not token:
            break
    assert len({e["taskId"] for e in everything if "taskId" in e}) == tasks
    assert everything[0] == first["events"][0]
    assert everything[1:6] == second["events"]
