"""One server process under a hostile mix, while a benign client keeps working (make test-stress).

For ``MIX_SECONDS`` a handful of threads send what costs a server most:
oversized lists, deep and long patterns, extreme dates and numbers, slow,
dripping and abandoned requests, and pages of a 2,000-task group's
history. Meanwhile one benign client pings and creates tasks, one call
after another. Its p99 latency must stay under 100 ms, and no request,
hostile or benign, may be answered with a 5xx.
"""

from __future__ import annotations

import multiprocessing
import socket
import statistics
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import taskcluster

from tests.acceptance.queue_helpers import task_definition
from tests.acceptance.test_queue_history import CairnQueue
from tests.conftest import free_port
from tests.integration.cairn_process import root_options, start_server, stop_server

MIX_SECONDS = 30.0
GROUP_TASKS = 2000
BENIGN_P99_SECONDS = 0.100


class Tally:
    """Statuses seen, and the benign client's latencies."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.server_errors: list[str] = []
        self.latencies: dict[str, list[float]] = {"ping": [], "createTask": []}
        self.hostile = 0

    def status(self, what: str, status: int) -> None:
        with self.lock:
            self.hostile += 1
            if status >= 500:
                self.server_errors.append(f"{what}: {status}")


def hostile_loop(stop: threading.Event, tally: Tally, what: str, attack: Callable[[], int | None]) -> None:
    while not stop.is_set():
        try:
            status = attack()
        except (httpx.HTTPError, OSError):
            status = None  # a hostile client that is cut off or times out has no answer to count
        if status is not None:
            tally.status(what, status)


def raw(port: int, data: bytes, linger: float = 0.0) -> int | None:
    """Send ``data`` on a fresh connection, keep it ``linger`` seconds, then hang up; the status if one came."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(data)
        time.sleep(linger)
        s.setblocking(False)
        try:
            head = s.recv(64)
        except (BlockingIOError, OSError):
            return None
    return int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/1.1 ") else None


def attacks(root_url: str, port: int, group: str) -> dict[str, Callable[[], int | None]]:
    anonymous = httpx.Client(base_url=root_url, timeout=30)
    root_queue = taskcluster.Queue(root_options(root_url))
    root_index = taskcluster.Index(root_options(root_url))
    million = b'{"scopes": [' + b",".join([b'"a"'] * 1_000_000) + b"]}"
    counts = {"taskQueueIds": [f"p/t-{i}" for i in range(100_000)]}
    deep = b'{"scopes": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    long_scope = {"scopes": ["assume:" + "a*" * 50_000]}
    history_queue = CairnQueue(root_options(root_url))

    def post(path: str, **kw: object) -> int:
        return anonymous.post(path, **kw).status_code  # type: ignore[arg-type]

    def rest_status(call: Callable[[], object]) -> int:
        try:
            call()
        except taskcluster.exceptions.TaskclusterRestFailure as e:
            return e.status_code
        return 200

    def extreme_task() -> int:
        definition = task_definition(expires="9999-12-31T23:00:00-05:00")
        return rest_status(lambda: root_queue.createTask(taskcluster.slugId(), definition))

    def extreme_rank() -> int:
        entry = {"taskId": taskcluster.slugId(), "rank": 1e308, "data": {}, "expires": "0001-01-01T00:00:00+01:00"}
        return rest_status(lambda: root_index.insertTask("hostile.rank", entry))

    def history() -> int:
        return rest_status(lambda: history_queue.taskGroupHistory(group, query={"limit": 1}))

    def stream() -> int:
        params = {"exchange": "exchange/taskcluster-queue/v1/task-defined", "routingKey": ".".join(["#"] * 490)}
        with anonymous.stream("GET", "/api/events/v1/stream", params=params, timeout=2) as response:
            return response.status_code

    return {
        "million scopes": lambda: post("/api/auth/v1/scopes/expand", content=million,
                                       headers={"Content-Type": "application/json"}),
        "100k task queues": lambda: post("/api/queue/v1/task-queues/counts", json=counts),
        "deep body": lambda: post("/api/auth/v1/scopes/expand", content=deep),
        "long scope pattern": lambda: post("/api/auth/v1/scopes/expand", json=long_scope),
        "long routing key": stream,
        "extreme date": extreme_task,
        "extreme rank": extreme_rank,
        "group history": history,
        "abandoned body": lambda: raw(port, b"POST /api/auth/v1/scopes/expand HTTP/1.1\r\nHost: x\r\n"
                                            b"Content-Length: 1000\r\n\r\n{\"sc", linger=0.2),
        "half headers": lambda: raw(port, b"GET /api/queue/v1/ping HTTP/1.1\r\nHost: x\r\n", linger=2.0),
        "drip": lambda: drip(port),
    }


def drip(port: int) -> int | None:
    """A slowloris body: one byte every half second, for up to ten seconds."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"POST /api/auth/v1/scopes/expand HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
        try:
            for _ in range(20):
                s.sendall(b" ")
                time.sleep(0.5)
            head = s.recv(64)
        except OSError:
            return None
    return int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/1.1 ") else None


def benign_client(root_url: str, seconds: float, results: Any) -> None:
    """Ping and create a task, one after the other, for ``seconds``; put (latencies, server errors) on ``results``.

    It runs in a process of its own, so that the hostile clients' work (building
    and sending megabytes) does not hold its interpreter.
    """
    latencies: dict[str, list[float]] = {"ping": [], "createTask": []}
    server_errors = []
    queue = taskcluster.Queue(root_options(root_url))
    give_up = time.monotonic() + seconds
    with httpx.Client(base_url=root_url, timeout=30) as client:
        while time.monotonic() < give_up:
            start = time.monotonic()
            status = client.get("/api/queue/v1/ping").status_code
            latencies["ping"].append(time.monotonic() - start)
            if status >= 500:
                server_errors.append(f"benign ping: {status}")
            start = time.monotonic()
            try:
                queue.createTask(taskcluster.slugId(), task_definition(taskQueueId="benign/client"))
            except taskcluster.exceptions.TaskclusterRestFailure as e:
                server_errors.append(f"benign createTask: {e.status_code}")
            latencies["createTask"].append(time.monotonic() - start)
            time.sleep(0.02)
    results.put((latencies, server_errors))


def percentile(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1] if len(values) > 1 else values[0]


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_benign_latency_and_no_server_error_under_a_hostile_mix(database_url: str, tmp_path: Path):
    port = free_port()
    root_url = f"http://127.0.0.1:{port}"
    process = start_server(
        database_url, tmp_path / "data", port, claim_timeout="1200", header_timeout="5", body_timeout="5"
    )
    try:
        group = taskcluster.slugId()
        queue = taskcluster.Queue(root_options(root_url))
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda _: queue.createTask(taskcluster.slugId(), task_definition(taskGroupId=group)),
                          range(GROUP_TASKS)))

        tally, stop = Tally(), threading.Event()
        threads = [
            threading.Thread(target=hostile_loop, args=(stop, tally, what, attack), daemon=True)
            for what, attack in attacks(root_url, port, group).items()
        ]
        for thread in threads:
            thread.start()
        context = multiprocessing.get_context("spawn")
        results = context.Queue()
        benign = context.Process(target=benign_client, args=(root_url, MIX_SECONDS, results), daemon=True)
        benign.start()
        tally.latencies, errors = results.get(timeout=MIX_SECONDS + 60)
        tally.server_errors.extend(errors)
        benign.join(10)
        stop.set()
        benign_latencies = tally.latencies["ping"] + tally.latencies["createTask"]
        summary = {
            name: f"p50 {percentile(values, 50) * 1000:.1f} ms, p99 {percentile(values, 99) * 1000:.1f} ms, "
                  f"n={len(values)}"
            for name, values in {**tally.latencies, "benign": benign_latencies}.items()
        }
        print(f"\nhostile requests answered: {tally.hostile}; 5xx: {len(tally.server_errors)} "
              f"{sorted(set(tally.server_errors))[:10]}; benign latency: {summary}", flush=True)
        for thread in threads:
            thread.join(60)
    finally:
        stop_server(process)

    assert not tally.server_errors, tally.server_errors[:20]
    assert percentile(benign_latencies, 99) < BENIGN_P99_SECONDS, summary
