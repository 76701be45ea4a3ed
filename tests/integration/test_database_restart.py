"""PostgreSQL restarted under load: requests fail cleanly, Cairn recovers by itself, nothing is half-written.

Two `cairn serve` processes share a private PostgreSQL cluster (the
machine's shared one serves other tests) while official clients create,
claim and complete tasks on both. The cluster is stopped — ``fast``, and
``immediate``, a crash — kept down for a few seconds and started again; the
Cairn processes keep running throughout. Then:

- every call that failed got a 503 with Taskcluster's error body, and a
  client that retries 5xx, as the official ones do, saw no failure at all;
- each process serves creates, claims and reports again within a bound;
- a task created on one process reaches a claimWork already waiting on the
  other at once (its LISTEN connection came back), is indexed (a log
  follower took the lead again) and shows on an event stream that was open
  through the outage;
- every call answered 2xx is in the state, claims left unreported lapse
  (the reaper runs again), and the views equal a rebuild from the log.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg
import pytest
import taskcluster
from click.testing import CliRunner
from taskcluster.exceptions import TaskclusterRestFailure

from cairn.consumers.log_signal import LogSignal
from cairn.consumers.pending_signal import PendingSignal
from tests.acceptance.queue_helpers import task_definition
from tests.acceptance.test_event_stream import signed_get
from tests.conftest import SECRET_KEY, free_port
from tests.integration.cairn_process import MixedLoad, root_options, start_server, stop_server
from tests.integration.private_postgres import PrivateCluster, private_cluster

LOAD_QUEUE = "cairn-test/db-restart"
PROBE_QUEUE = "cairn-test/db-restart-probe"
PROBE_ROUTE = "cairn-test.db-restart-probe"
INDEX_NAMESPACE = "cairn-test.db-restart"
#: From PostgreSQL accepting connections again to a full create, claim and report on each process.
RECOVERY_BOUND = 15.0
#: A waiting claimWork's fallback re-check comes after 5 s; a live LISTEN is much quicker.
DISPATCH_BOUND = 2.5


@pytest.fixture
def cluster() -> Iterator[PrivateCluster]:
    with private_cluster() as cluster:
        yield cluster


class ProbeStream:
    """An event stream opened before the outages, read until ``expected`` probes have completed."""

    def __init__(self, root_url: str, expected: int):
        self.url = f"{root_url}/api/events/v1/stream?routingKey=route.{PROBE_ROUTE}.%23"
        self.expected = expected
        self.completed: list[str] = []
        self.connected = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)

    def __enter__(self) -> ProbeStream:
        self._thread.start()
        assert self.connected.wait(10), "the event stream did not open"
        return self

    def __exit__(self, *exc: Any) -> None:
        self._thread.join(5)

    def _read(self) -> None:
        timeout = httpx.Timeout(10, read=60)
        with httpx.stream("GET", self.url, headers=signed_get(self.url), timeout=timeout) as response:
            assert response.status_code == 200
            for line in response.iter_lines():
                if line.startswith(": connected"):
                    self.connected.set()
                elif line.startswith("data: "):
                    message = orjson.loads(line[6:])
                    if message["exchange"].endswith("task-completed"):
                        self.completed.append(message["payload"]["status"]["taskId"])
                        if len(self.completed) == self.expected:
                            return


def eventually(check: Any, bound: float, what: str) -> float:
    """Call ``check`` until it returns true, for at most ``bound`` seconds; returns the time taken."""
    started = time.monotonic()
    while True:
        try:
            if check():
                return time.monotonic() - started
        except TaskclusterRestFailure as e:
            if e.status_code < 500:
                raise
        assert time.monotonic() - started < bound, f"{what} not within {bound} s"
        time.sleep(0.1)


def full_cycle(root_url: str, queue_id: str) -> bool:
    """Create, claim and complete one task; any step may fail while the database is away."""
    queue = taskcluster.Queue(root_options(root_url))
    task_id = taskcluster.slugId()
    queue.createTask(task_id, task_definition(taskQueueId=queue_id))
    (claim,) = queue.claimWork(queue_id, {"workerGroup": "recovery", "workerId": "r", "tasks": 1})["tasks"]
    queue.reportCompleted(claim["status"]["taskId"], str(claim["runId"]))
    return True


def dispatch_across_processes(creator_url: str, waiter_url: str, cycle: int) -> str:
    """A claimWork waits on one process; the task is created on the other. Returns the task id."""
    claimed: dict[str, Any] = {}

    def wait_for_work() -> None:
        queue = taskcluster.Queue(root_options(waiter_url))
        claimed.update(queue.claimWork(PROBE_QUEUE, {"workerGroup": "probe", "workerId": "p", "tasks": 1}))
        claimed["at"] = time.monotonic()

    waiter = threading.Thread(target=wait_for_work, daemon=True)
    waiter.start()
    time.sleep(0.5)  # the claim has looked, found nothing, and waits
    task_id = taskcluster.slugId()
    definition = task_definition(
        taskQueueId=PROBE_QUEUE, routes=[f"index.{INDEX_NAMESPACE}.probe{cycle}", f"{PROBE_ROUTE}.{cycle}"]
    )
    taskcluster.Queue(root_options(creator_url)).createTask(task_id, definition)
    created_at = time.monotonic()
    waiter.join(25)
    assert claimed.get("tasks"), "the waiting claimWork was not given the new task"
    assert claimed["tasks"][0]["status"]["taskId"] == task_id
    latency = claimed["at"] - created_at
    assert latency < DISPATCH_BOUND, f"dispatch to a waiting claimWork took {latency:.1f} s"
    taskcluster.Queue(root_options(waiter_url)).reportCompleted(task_id, "0")
    return task_id


def indexed(index: Any, namespace: str) -> str | None:
    try:
        return index.findTask(namespace)["taskId"]
    except TaskclusterRestFailure as e:
        if e.status_code == 404:
            return None
        raise


def assert_acknowledged_calls_are_in_the_state(root_url: str, load: MixedLoad) -> None:
    queue = taskcluster.Queue(root_options(root_url))
    ids = sorted(load.created | {task_id for task_id, _ in load.claimed})
    statuses = {}
    for start in range(0, len(ids), 500):
        for entry in queue.statuses({"taskIds": ids[start:start + 500]})["statuses"]:
            statuses[entry["taskId"]] = entry["status"]
    assert load.created <= set(statuses), "a task whose creation was acknowledged is missing"
    for task_id, run_id in load.claimed:
        runs = statuses[task_id]["runs"]
        assert len(runs) > run_id and runs[run_id]["state"] != "pending", (task_id, run_id)
    for task_id, run_id in load.completed:
        assert statuses[task_id]["runs"][run_id]["state"] == "completed", (task_id, run_id)

    def lapsed(task_id: str, run_id: int) -> bool:
        run = queue.status(task_id)["status"]["runs"][run_id]
        return run["state"] == "exception" and run["reasonResolved"] == "claim-expired"

    eventually(lambda: all(lapsed(*run) for run in sorted(load.abandoned)), 20, "abandoned claims lapsing")


def assert_failures_were_clean(root_url: str, failures: list[tuple[str, Exception]]) -> None:
    """Every failure is a 503 with Taskcluster's body; or a report that came after its claim lapsed.

    A call made as the database goes away waits for a connection; if the
    database is back in time it goes through, and meanwhile a short claim
    (2 s here) may have lapsed: reporting that run is then a 409, as it
    would be from Taskcluster.
    """
    assert failures, "no call failed: the outage came too late to test anything"
    queue = taskcluster.Queue(root_options(root_url))
    for method, error in failures:
        assert isinstance(error, TaskclusterRestFailure), (method, error)
        assert set(error.body) == {"code", "message", "requestInfo"}, (method, error.body)
        assert error.body["requestInfo"]["method"] == method
        if error.status_code == 409 and method == "reportCompleted":
            params = error.body["requestInfo"]["params"]
            run = queue.status(params["taskId"])["status"]["runs"][int(params["runId"])]
            assert run["reasonResolved"] == "claim-expired", (method, error.body)
            continue
        assert error.status_code == 503, (method, error.status_code, error.body)
        assert error.body["code"] == "ServiceUnavailable"


class RetryingCreator:
    """A client as Taskcluster's docs show it (retrying 5xx), creating tasks through every outage."""

    def __init__(self, root_url: str):
        self.queue = taskcluster.Queue(root_options(root_url, max_retries=5))
        self.created: list[str] = []
        self.errors: list[Exception] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)
        assert not self._thread.is_alive(), "a retrying createTask hung"

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            task_id = taskcluster.slugId()
            try:
                self.queue.createTask(task_id, task_definition(taskQueueId=f"{LOAD_QUEUE}-retried"))
                self.created.append(task_id)
            except Exception as e:
                self.errors.append(e)


def restart_under_load(cluster: PrivateCluster, tmp_path: Path, modes: list[str], threads: int, outage: float) -> None:
    with ExitStack() as stack:
        servers = []
        for name in ("a", "b"):
            port = free_port()
            process = start_server(cluster.url, tmp_path / name, port)
            stack.callback(stop_server, process)
            servers.append((process, f"http://127.0.0.1:{port}"))
        (a, a_url), (b, b_url) = servers
        stream = stack.enter_context(ProbeStream(b_url, expected=len(modes)))
        load = MixedLoad([a_url, b_url], LOAD_QUEUE, threads)
        load.start()
        stack.callback(load.stop)
        retrying = RetryingCreator(b_url)
        stack.callback(retrying.stop)
        index = taskcluster.Index(root_options(a_url))

        for cycle, mode in enumerate(modes):
            load.wait_for(created=len(load.created) + 20, completed=len(load.completed) + 5)
            cluster.stop(mode)
            time.sleep(outage)
            cluster.start()
            for url, queue_id in ((a_url, f"{LOAD_QUEUE}-a"), (b_url, f"{LOAD_QUEUE}-b")):
                eventually(lambda: full_cycle(url, queue_id), RECOVERY_BOUND, f"recovery after a {mode} stop")
            probe = dispatch_across_processes(a_url, b_url, cycle)
            eventually(lambda: indexed(index, f"{INDEX_NAMESPACE}.probe{cycle}") == probe, 10,
                       "indexing a task completed after the restart")
            eventually(lambda: probe in stream.completed, 10, "the event stream delivering the probe's completion")
            assert a.poll() is None and b.poll() is None, "a Cairn process died"

        load.wait_for(created=len(load.created) + 10, completed=len(load.completed) + 5)
        load.stop()
        retrying.stop()
        assert retrying.errors == [], "a client that retries 5xx saw a call fail"
        load.created.update(retrying.created)
        assert_failures_were_clean(a_url, load.failures)
        assert_acknowledged_calls_are_in_the_state(a_url, load)

    from cairn.cli import main

    env = {"CAIRN_DATABASE_URL": cluster.url, "CAIRN_SECRET_KEY": SECRET_KEY, "CAIRN_DATA_DIR": str(tmp_path)}
    verified = CliRunner().invoke(main, ["projections", "verify"], env=env)
    assert verified.exit_code == 0, verified.output


def listening_backends(cluster: PrivateCluster) -> list[int]:
    with psycopg.connect(cluster.url, autocommit=True) as conn:
        rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE query LIKE 'LISTEN %%'").fetchall()
    return [pid for (pid,) in rows]


def test_listeners_that_reconnect_wake_their_waiters(cluster):
    """A notification sent while a listener is away is lost; reconnecting, it wakes everyone instead."""
    queue_id = "cairn-test/db-restart-listener"

    async def scenario() -> None:
        pending, log_signal = PendingSignal(), LogSignal()
        pending.attach(asyncio.get_running_loop())
        pending.generation(queue_id)  # a queue some claimWork has looked at
        pending.listen(cluster.url)
        log_signal.listen(cluster.url)
        try:
            eventually(lambda: len(listening_backends(cluster)) == 2, 10, "both listeners connecting")
            with psycopg.connect(cluster.url, autocommit=True) as conn:
                for pid in listening_backends(cluster):
                    conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
                eventually(lambda: not listening_backends(cluster), 5, "the listeners' connections going")
                seen, log_seen = pending.generation(queue_id), log_signal.generation
                conn.execute("SELECT pg_notify('cairn_pending', %s)", (queue_id,))  # nobody hears it
            started = time.monotonic()
            while pending.generation(queue_id) == seen and time.monotonic() - started < 8:
                await pending.wait(queue_id, seen, 8)  # as claimWork waits: it may wake early, for nothing
            waited = time.monotonic() - started
            assert pending.generation(queue_id) != seen, "the waiter was not woken"
            assert waited < 3, f"the waiter slept {waited:.1f} s, until its fallback re-check"
            eventually(lambda: log_signal.generation != log_seen, 3, "the log listener waking its followers")
        finally:
            pending.stop()
            log_signal.stop()

    asyncio.run(scenario())


def test_postgres_restarted_and_crashed_under_load(cluster, tmp_path):
    restart_under_load(cluster, tmp_path, ["fast", "immediate"], threads=3, outage=2.0)


@pytest.mark.slow
def test_postgres_restarted_and_crashed_again_and_again_under_heavier_load(cluster, tmp_path):
    restart_under_load(cluster, tmp_path, ["immediate", "fast", "immediate", "fast"], threads=6, outage=4.0)
