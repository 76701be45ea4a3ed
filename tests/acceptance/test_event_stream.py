"""The event stream: server-sent Pulse messages, filtered and resumable."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import mohawk
import orjson
import taskcluster

from tests.acceptance.queue_helpers import claim_one, task_definition
from tests.conftest import ROOT_TOKEN

COMPLETED = "exchange/taskcluster-queue/v1/task-completed"


def signed_get(url: str) -> dict[str, str]:
    sender = mohawk.Sender(
        {"id": "static/root", "key": ROOT_TOKEN, "algorithm": "sha256"},
        url, "GET", content="", content_type="", always_hash_content=False,
    )
    return {"Authorization": sender.request_header}


def read_events(server, count: int, query: str = "", last_event_id: str | None = None,
                started: threading.Event | None = None, timeout: float = 20) -> list[dict[str, Any]]:
    url = f"{server.root_url}/api/events/v1/stream{query}"
    headers = signed_get(url)
    if last_event_id:
        headers["Last-Event-ID"] = last_event_id
    found: list[dict[str, Any]] = []
    with httpx.stream("GET", url, headers=headers, timeout=timeout) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        event: dict[str, Any] = {}
        for line in response.iter_lines():
            if line.startswith(": connected") and started is not None:
                started.set()
            if line.startswith("id: "):
                event["id"] = line[4:]
            elif line.startswith("data: "):
                event["data"] = orjson.loads(line[6:])
            elif line == "" and "data" in event:
                found.append(event)
                event = {}
                if len(found) >= count:
                    break
    return found


def complete(queue, **overrides) -> str:
    task_id = taskcluster.slugId()
    queue.createTask(task_id, task_definition(**overrides))
    claim = claim_one(queue, task_queue_id=overrides.get("taskQueueId", "cairn-test/worker"))
    queue.reportCompleted(claim["status"]["taskId"], str(claim["runId"]))
    return task_id


def background(fn, *args, **kwargs):
    result: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: result.setdefault("value", fn(*args, **kwargs)))
    thread.start()
    return thread, result


def test_live_messages_filtered_by_exchange(server):
    queue = server.client("queue")
    started = threading.Event()
    thread, result = background(read_events, server, 2, f"?exchange={COMPLETED}", started=started)
    assert started.wait(10)
    first, second = complete(queue), complete(queue)
    thread.join(20)
    events = result["value"]
    assert [e["data"]["exchange"] for e in events] == [COMPLETED, COMPLETED]
    keys = [e["data"]["routingKey"].split(".") for e in events]
    assert [k[1] for k in keys] == [first, second]
    assert keys[0][0] == "primary" and keys[0][2] == "0"
    assert all(e["id"] == e["data"]["position"] for e in events)


def test_routing_key_pattern_matches_task_routes(server):
    queue = server.client("queue")
    started = threading.Event()
    thread, result = background(
        read_events, server, 1, f"?exchange={COMPLETED}&routingKey=route.index.%23", started=started
    )
    assert started.wait(10)
    complete(queue)  # no routes: filtered out
    routed = complete(queue, routes=["index.cairn.tests.latest"])
    thread.join(20)
    (event,) = result["value"]
    assert event["data"]["payload"]["status"]["taskId"] == routed
    assert "route.index.cairn.tests.latest" in event["data"]["cc"]


#: What one task of its own group leaves on the stream, in order.
LIFECYCLE = ["task-defined", "task-pending", "task-running", "task-completed", "task-group-resolved"]


def test_resume_after_disconnect_has_no_gap_and_no_duplicate(server):
    queue = server.client("queue")
    before = str(server.runtime.log.recorder.max_notification_id() or 0)
    tasks = [complete(queue) for _ in range(3)]
    first_part = read_events(server, 4, f"?from={before}")
    tasks += [complete(queue) for _ in range(2)]
    # Read until the last message we know exists, then stop.
    total_expected = len(tasks) * len(LIFECYCLE)
    remaining = read_events(server, total_expected - len(first_part), last_event_id=first_part[-1]["id"])
    ids = [e["id"] for e in first_part + remaining]
    assert len(ids) == len(set(ids)) == total_expected
    positions = [tuple(int(p) for p in i.split(".")) for i in ids]
    assert positions == sorted(positions)
    by_task: dict[str, list[str]] = {}
    for event in first_part + remaining:
        data = event["data"]
        task_id = data["payload"].get("status", {}).get("taskId") or data["payload"]["taskGroupId"]
        by_task.setdefault(task_id, []).append(data["exchange"].rsplit("/", 1)[1])
    assert by_task == {task_id: LIFECYCLE for task_id in tasks}
    whole = read_events(server, total_expected, f"?from={before}")
    assert [e["id"] for e in whole] == ids


def test_stream_needs_scopes(server):
    url = f"{server.root_url}/api/events/v1/stream"
    response = httpx.get(url, timeout=5)
    assert response.status_code == 403
    assert response.json()["code"] == "InsufficientScopes"


def opening_id(server, query: str = "") -> str:
    """The position a stream opened without one names first, before any message."""
    url = f"{server.root_url}/api/events/v1/stream{query}"
    with httpx.stream("GET", url, headers=signed_get(url), timeout=10) as response:
        lines = response.iter_lines()
        assert next(lines) == ": connected"
        first = next(lines)
        assert first.startswith("id: ")
        assert next(lines) == "", "an id with no data: no event is dispatched"
        return first[4:]


def test_a_stream_opened_at_the_present_names_its_position_to_resume_from(server):
    """A client that saw no message before its connection dropped still resumes with no gap."""
    queue = server.client("queue")
    complete(queue)
    start = opening_id(server)
    assert start == str(server.runtime.log.recorder.max_notification_id())
    # Meanwhile, disconnected: a task goes through its whole life.
    task_id = complete(queue)
    events = read_events(server, len(LIFECYCLE), last_event_id=start)
    assert [e["data"]["exchange"].rsplit("/", 1)[1] for e in events] == LIFECYCLE
    assert {e["data"]["payload"].get("status", {}).get("taskId", task_id) for e in events} == {task_id}
    # Told a position, the stream names that one.
    assert opening_id(server, f"?from={events[1]['id']}") == events[1]["id"]
