"""Task lifecycles against a real `cairn serve` process, and the database's own limit.

Each figure is measured in the same run as the machine's limit it is
compared with, because these machines are noisy:

- lifecycles/s (createTask → claimWork → reportCompleted) with the official
  client, one thread, and the server's CPU per lifecycle (user + system time
  of the server process, read from /proc, divided by lifecycles);
- the database's limit: three durable single-row transactions per
  lifecycle, timed with the same driver on the same database;
- dispatch latency: a worker waits in claimWork, a task is created; the time
  from createTask's answer to claimWork's;
- dependency release: a prerequisite's reportCompleted to its dependent's
  task-pending message on the event stream (so: commit → SSE delivery);
- AMQP publish delay: createTask's answer to its task-defined message
  arriving from RabbitMQ (commit → publish → delivery), when RabbitMQ is up.
"""

from __future__ import annotations

import os
import secrets
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
from typing import Any

import httpx
import mohawk
import orjson
import psycopg
import taskcluster

from cairn.domain.token_cipher import TokenCipher

PG_ADMIN = os.environ.get("CAIRN_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`cairn serve` in a subprocess, on a fresh database."""

    def __init__(self, backend: str, amqp_url: str = ""):
        self.backend = backend
        self.amqp_url = amqp_url
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

    def __enter__(self) -> Server:
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
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cairn.cli", "serve", "--port", str(self.port)], env=env
        )
        give_up = time.monotonic() + 30
        while time.monotonic() < give_up:
            try:
                httpx.get(self.root_url + "/api/queue/v1/ping", timeout=1)
                return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("cairn serve did not start")

    def __exit__(self, *exc: Any) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(30)
        if self.database:
            with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

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
    cpu, started = server.cpu_seconds(), time.perf_counter()
    for _ in range(count):
        one()
    elapsed = time.perf_counter() - started
    return {
        "lifecycles_per_s": count / elapsed,
        "server_cpu_ms_per_lifecycle": (server.cpu_seconds() - cpu) / count * 1000,
    }


def database_limit(server: Server, count: int = 300) -> float:
    """Lifecycles/s if each cost exactly three durable single-row transactions."""
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
        db.execute("CREATE TABLE t (x INTEGER)")
        started = time.perf_counter()
        for i in range(count):
            db.execute("BEGIN IMMEDIATE")
            db.execute("INSERT INTO t VALUES (?)", (i,))
            db.execute("COMMIT")
        elapsed = time.perf_counter() - started
    return count / elapsed / 3


def dispatch_latency(server: Server, samples: int) -> list[float]:
    queue, waiting = server.client(), server.client()
    queue_id = f"bench/d{uuid.uuid4().hex[:8]}"
    latencies = []
    for _ in range(samples):
        answered: dict[str, float] = {}

        def claim() -> None:
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
    stop = threading.Event()

    def listen() -> None:
        with httpx.stream("GET", url, headers={"Authorization": sender.request_header}, timeout=None) as stream:
            for line in stream.iter_lines():
                if line.startswith(": connected"):
                    ready.set()
                if line.startswith("data: "):
                    seen[orjson.loads(line[6:])["payload"]["status"]["taskId"]] = time.perf_counter()
                if stop.is_set():
                    return

    threading.Thread(target=listen, daemon=True).start()
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
    stop.set()
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


def run(backend: str, count: int, samples: int, amqp_url: str = "") -> dict[str, Any]:
    with Server(backend) as server:
        result: dict[str, Any] = dict(lifecycles(server, count))
        result["database_limit_lifecycles_per_s"] = database_limit(server)
        result["dispatch"] = percentiles(dispatch_latency(server, samples))
        result["dependency_release"] = percentiles(release_latency(server, samples))
    if amqp_url:
        with Server(backend, amqp_url) as server:
            result["amqp_publish"] = percentiles(amqp_delay(server, amqp_url, samples))
    return result
