"""Task lifecycles against a real `cairn serve` process, and the database's own limit.

Each figure is measured in the same run as the machine's limit it is
compared with, because these machines are noisy:

- lifecycles/s (createTask → claimWork → reportCompleted) with the official
  client, one thread, and the server's CPU per lifecycle (user + system time
  of the server's process tree, read from /proc, divided by lifecycles);
- the same with many threads, one client object each, all on one shared task
  queue (each thread is a scheduler and a worker: it creates a task, claims
  whichever task the queue hands it, and completes that one), with the
  client process's own CPU, which is the limit there;
- the database's limit: three durable single-row transactions per
  lifecycle, timed with the same driver on the same database, from one
  connection and from many at once (PostgreSQL commits those together);
- dispatch latency: a worker waits in claimWork, a task is created; the time
  from createTask's answer to claimWork's;
- dependency release: a prerequisite's reportCompleted to its dependent's
  task-pending message on the event stream (so: commit → SSE delivery);
- AMQP publish delay: createTask's answer to its task-defined message
  arriving from RabbitMQ (commit → publish → delivery), when RabbitMQ is up.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Self

import httpx
import mohawk
import orjson
import psycopg
import taskcluster

from bench import procstat
from cairn.domain.auth.token_cipher import TokenCipher

PG_ADMIN = os.environ.get("CAIRN_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
# Connections for the concurrent limit. Cairn's pool may open 32, but PostgreSQL's
# group commit is saturated well before that here (16 → 64 connections adds ~15%),
# and a shared PostgreSQL has other clients to serve.
LIMIT_CONNECTIONS = 16


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`cairn serve` in a subprocess, on a fresh database."""

    def __init__(
        self, backend: str, amqp_url: str = "", settings: dict[str, str] | None = None, workers: int = 1
    ):
        self.backend = backend
        self.workers = workers
        self.amqp_url = amqp_url
        self.settings = settings or {}
        self.dir = Path(tempfile.mkdtemp(prefix="cairn-bench-"))
        self.port = _free_port()
        self.root_url = f"http://127.0.0.1:{self.port}"
        self.token = secrets.token_urlsafe(33)
        self.database = None
        if backend == "postgres":
            self.database = f"cairn_bench_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
                admin.execute(f'CREATE DATABASE "{self.database}"')
            self.url = PG_ADMIN.rsplit("/", 1)[0] + "/" + self.database
        else:
            self.url = f"sqlite:///{self.dir / 'cairn.db'}"

    def __enter__(self) -> Self:
        env = dict(os.environ)
        env.update(
            CAIRN_DATABASE_URL=self.url,
            CAIRN_ROOT_ACCESS_TOKEN=self.token,
            CAIRN_SECRET_KEY=TokenCipher.generate_key(),
            CAIRN_DATA_DIR=str(self.dir),
            CAIRN_ROOT_URL=self.root_url,
            CAIRN_LOG_LEVEL="warning",
            CAIRN_AMQP_URL=self.amqp_url,
        )
        env.update(self.settings)
        self.process = subprocess.Popen(self.command(), env=env)
        give_up = time.monotonic() + 30
        while time.monotonic() < give_up:
            try:
                httpx.get(self.root_url + "/api/queue/v1/ping", timeout=1)
                return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("cairn serve did not start")

    def command(self) -> list[str]:
        return [sys.executable, "-m", "cairn.cli", "serve", "--port", str(self.port), "--workers", str(self.workers)]

    def __exit__(self, *exc: object) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(30)
        shutil.rmtree(self.dir, ignore_errors=True)  # its database (SQLite), blobs and deployment key
        if self.database:
            with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')

    def cpu_seconds(self) -> float:
        return procstat.tree_cpu_seconds(self.process.pid)

    def rss_bytes(self) -> int:
        return procstat.tree_rss_bytes(self.process.pid)

    def client(self, service: str = "queue") -> Any:
        cls = getattr(taskcluster, service.capitalize())
        return cls({"rootUrl": self.root_url, "credentials": {"clientId": "static/root", "accessToken": self.token}})


def definition(task_queue_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "taskQueueId": task_queue_id,
        "created": taskcluster.stringDate(taskcluster.fromNow("0 seconds")),
        "deadline": taskcluster.stringDate(taskcluster.fromNow("1 hour")),
        "payload": {},
        "metadata": {"name": "bench", "description": "bench", "owner": "bench@example.com",
                     "source": "https://example.com/bench"},
        **extra,
    }


def lifecycles(server: Server, count: int) -> dict[str, float]:
    queue = server.client()
    queue_id = f"bench/l{uuid.uuid4().hex[:8]}"

    def one() -> None:
        task_id = taskcluster.slugId()
        queue.createTask(task_id, definition(queue_id))
        claim = queue.claimWork(queue_id, {"workerGroup": "bench", "workerId": "w", "tasks": 1})["tasks"][0]
        queue.reportCompleted(task_id, str(claim["runId"]))

    for _ in range(min(20, count)):
        one()
    cpu, client_cpu, started = server.cpu_seconds(), time.process_time(), time.perf_counter()
    for _ in range(count):
        one()
    elapsed = time.perf_counter() - started
    return {
        "lifecycles_per_s": count / elapsed,
        "server_cpu_ms_per_lifecycle": (server.cpu_seconds() - cpu) / count * 1000,
        "client_cpu_ms_per_lifecycle": (time.process_time() - client_cpu) / count * 1000,
    }


def threaded_lifecycles(server: Server, threads: int, count: int) -> dict[str, float]:
    """``count`` lifecycles from ``threads`` threads, one official client each, on one shared task queue."""
    queue_id = f"bench/t{uuid.uuid4().hex[:8]}"
    claim = {"workerGroup": "bench", "workerId": "w", "tasks": 1}
    remaining = [count]
    lock = threading.Lock()
    failures: list[BaseException] = []

    def loop(queue: Any, gate: threading.Barrier) -> None:
        gate.wait()
        while True:
            with lock:
                if remaining[0] <= 0 or failures:
                    return
                remaining[0] -= 1
            try:
                queue.createTask(taskcluster.slugId(), definition(queue_id))
                tasks: list[dict[str, Any]] = []
                while not tasks:
                    tasks = queue.claimWork(queue_id, claim)["tasks"]
                queue.reportCompleted(tasks[0]["status"]["taskId"], str(tasks[0]["runId"]))
            except BaseException as e:  # noqa: BLE001  (re-raised in the caller)
                failures.append(e)
                return

    def batch(size: int) -> float:
        remaining[0] = size
        gate = threading.Barrier(threads + 1)
        workers = [threading.Thread(target=loop, args=(server.client(), gate)) for _ in range(threads)]
        for worker in workers:
            worker.start()
        gate.wait()
        started = time.perf_counter()
        for worker in workers:
            worker.join()
        if failures:
            raise failures[0]
        return time.perf_counter() - started

    batch(threads * 2)
    cpu, client_cpu = server.cpu_seconds(), procstat.own_cpu_seconds()
    elapsed = batch(count)
    cpu, client_cpu = server.cpu_seconds() - cpu, procstat.own_cpu_seconds() - client_cpu
    return {
        "threads": threads,
        "lifecycles": count,
        "lifecycles_per_s": count / elapsed,
        "server_cpu_ms_per_lifecycle": cpu / count * 1000,
        "client_cpu_ms_per_lifecycle": client_cpu / count * 1000,
        "server_cores_busy": cpu / elapsed,
        "client_cores_busy": client_cpu / elapsed,
    }


def concurrent_database_limit(server: Server, connections: int = LIMIT_CONNECTIONS,
                              each: int = 100) -> dict[str, float]:
    """Lifecycles/s at three durable single-row transactions each, from ``connections`` connections at once.

    PostgreSQL commits concurrent transactions together (one WAL flush for
    many), so this is the limit a concurrent load is measured against.
    (SQLite has one writer at a time: its limit is the serial one.) Should
    PostgreSQL refuse some connections (too many clients), the rest do the work.
    """

    async def insert_all() -> tuple[float, int]:
        conns = []
        for _ in range(connections):
            try:
                conns.append(await psycopg.AsyncConnection.connect(server.url, autocommit=True))
            except psycopg.OperationalError:
                if not conns:
                    raise
                break
        await conns[0].execute("CREATE TABLE IF NOT EXISTS bench_limit_many (x bigint)")

        async def insert(conn: psycopg.AsyncConnection) -> None:
            for i in range(each):
                async with conn.transaction():
                    await conn.execute("INSERT INTO bench_limit_many VALUES (%s)", (i,))

        started = time.perf_counter()
        await asyncio.gather(*(insert(c) for c in conns))
        elapsed = time.perf_counter() - started
        await conns[0].execute("DROP TABLE bench_limit_many")
        for conn in conns:
            await conn.close()
        return elapsed, len(conns)

    elapsed, opened = asyncio.run(insert_all())
    return {"lifecycles_per_s": opened * each / elapsed / 3, "connections": opened}


def database_limit(server: Server, count: int = 300) -> float:
    """Lifecycles/s if each cost exactly three durable single-row transactions, one after another."""
    if server.backend == "postgres":
        with psycopg.connect(server.url, autocommit=True) as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS bench_limit (x bigint)")
            started = time.perf_counter()
            for i in range(count):
                with conn.transaction():
                    conn.execute("INSERT INTO bench_limit VALUES (%s)", (i,))
            elapsed = time.perf_counter() - started
            conn.execute("DROP TABLE bench_limit")
    else:
        db = sqlite3.connect(str(server.dir / "limit.db"), isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("CREATE TABLE IF NOT EXISTS t (x INTEGER)")
        started = time.perf_counter()
        for i in range(count):
            db.execute("BEGIN IMMEDIATE")
            db.execute("INSERT INTO t VALUES (?)", (i,))
            db.execute("COMMIT")
        elapsed = time.perf_counter() - started
        db.close()
    return count / elapsed / 3


def dispatch_latency(server: Server, samples: int) -> list[float]:
    queue, waiting = server.client(), server.client()
    queue_id = f"bench/d{uuid.uuid4().hex[:8]}"
    latencies = []
    for _ in range(samples):
        answered: dict[str, float] = {}

        def claim(answered: dict[str, float] = answered) -> None:
            waiting.claimWork(queue_id, {"workerGroup": "bench", "workerId": "w", "tasks": 1})
            answered["at"] = time.perf_counter()

        thread = threading.Thread(target=claim)
        thread.start()
        time.sleep(0.15)  # the worker is now waiting in claimWork
        task_id = taskcluster.slugId()
        queue.createTask(task_id, definition(queue_id))
        created = time.perf_counter()
        thread.join(25)
        latencies.append(max(answered["at"] - created, 0.0))
        queue.reportCompleted(task_id, "0")
    return latencies


def release_latency(server: Server, samples: int) -> list[float]:
    """reportCompleted of a prerequisite → task-pending of its dependent, seen on the event stream."""
    queue = server.client()
    queue_id = f"bench/r{uuid.uuid4().hex[:8]}"
    url = server.root_url + "/api/events/v1/stream?exchange=exchange/taskcluster-queue/v1/task-pending"
    sender = mohawk.Sender({"id": "static/root", "key": server.token, "algorithm": "sha256"},
                           url, "GET", content="", content_type="", always_hash_content=False)
    seen: dict[str, float] = {}
    ready = threading.Event()
    # The stream is read on an event loop of its own, so that it can be hung up
    # at once when done: the server's graceful shutdown waits for open streams.
    loop = asyncio.new_event_loop()

    async def read() -> None:
        async with httpx.AsyncClient(timeout=None) as client, \
                client.stream("GET", url, headers={"Authorization": sender.request_header}) as stream:
            async for line in stream.aiter_lines():
                if line.startswith(": connected"):
                    ready.set()
                if line.startswith("data: "):
                    seen[orjson.loads(line[6:])["payload"]["status"]["taskId"]] = time.perf_counter()

    reading = loop.create_task(read())
    listener = threading.Thread(target=loop.run_until_complete, args=(asyncio.wait([reading]),), daemon=True)
    listener.start()
    ready.wait(10)
    latencies = []
    for _ in range(samples):
        first, second = taskcluster.slugId(), taskcluster.slugId()
        queue.createTask(first, definition(queue_id))
        queue.createTask(second, definition(queue_id, dependencies=[first]))
        claim = queue.claimWork(queue_id, {"workerGroup": "bench", "workerId": "w", "tasks": 1})["tasks"][0]
        assert claim["status"]["taskId"] == first
        started = time.perf_counter()
        queue.reportCompleted(first, "0")
        give_up = time.monotonic() + 10
        while second not in seen and time.monotonic() < give_up:
            time.sleep(0.0005)
        latencies.append(seen[second] - started)
        claim = queue.claimWork(queue_id, {"workerGroup": "bench", "workerId": "w", "tasks": 1})["tasks"][0]
        queue.reportCompleted(second, "0")
    loop.call_soon_threadsafe(reading.cancel)
    listener.join(10)
    loop.close()
    return latencies


def amqp_delay(server: Server, amqp_url: str, samples: int) -> list[float]:
    """createTask's answer (its events committed) → its task-defined message arriving from RabbitMQ."""
    import asyncio

    import aio_pika

    queue = server.client()
    queue_id = f"bench/a{uuid.uuid4().hex[:8]}"
    arrived: dict[str, float] = {}
    ready, stop = threading.Event(), threading.Event()

    async def consume() -> None:
        connection = await aio_pika.connect_robust(amqp_url)
        async with connection:
            channel = await connection.channel()
            exchange = await channel.declare_exchange(
                "exchange/taskcluster-queue/v1/task-defined", aio_pika.ExchangeType.TOPIC, durable=True
            )
            bound = await channel.declare_queue(exclusive=True, auto_delete=True)
            await bound.bind(exchange, routing_key="#")

            async def collect(message: aio_pika.abc.AbstractIncomingMessage) -> None:
                arrived[orjson.loads(message.body)["status"]["taskId"]] = time.perf_counter()
                await message.ack()

            await bound.consume(collect)
            ready.set()
            while not stop.is_set():
                await asyncio.sleep(0.01)

    threading.Thread(target=lambda: asyncio.run(consume()), daemon=True).start()
    ready.wait(15)
    delays = []
    for _ in range(samples):
        task_id = taskcluster.slugId()
        queue.createTask(task_id, definition(queue_id))
        committed = time.perf_counter()
        give_up = time.monotonic() + 10
        while task_id not in arrived and time.monotonic() < give_up:
            time.sleep(0.0005)
        delays.append(arrived[task_id] - committed)
    stop.set()
    return delays


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50_ms": statistics.median(ordered) * 1000,
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
    }

