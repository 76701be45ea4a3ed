"""The floor a Cairn server is compared with: each request checked by Cairn's Hawk code, then one durable INSERT.

Starlette on uvicorn, the same request path shape as Cairn's (read the
body, authenticate it in a request thread with Cairn's own
:class:`HawkAuthenticator` and in-memory nonces, one autocommit INSERT of
one row, a JSON answer). It speaks just enough of the queue's API for the
bench's async generator: createTask, claimWork (always one task, the last
created) and reportCompleted. No events, no views, no rules: what any
server that authenticates and records each request must spend.

Run as ``python -m bench.floor_server --port N --database URL --token T``
(a ``sqlite:///path`` URL or a PostgreSQL one). With ``--on-loop`` (PostgreSQL)
nothing leaves the event loop: Hawk is checked there and the INSERT awaited
through psycopg's async pool, which measures what request threads cost
(``python -m bench.floor_server --compare N``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sqlite3
import sys
import threading
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson
import psycopg
import psycopg_pool
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bench.lifecycle import Server
from cairn.api.authentication import hawk_request
from cairn.api.hawk import HawkAuthenticator
from cairn.domain.auth.credentials import ClientRecord
from cairn.projections.auth.hawk_nonces import NonceStore

CREATE_TABLE = "CREATE TABLE IF NOT EXISTS floor (body {blob})"


class Inserts:
    """One durable single-row INSERT per call, on PostgreSQL (a pool) or SQLite (one writer)."""

    def __init__(self, url: str):
        self.sqlite = url.startswith("sqlite:///")
        if self.sqlite:
            self.db = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None,
                                      check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute(CREATE_TABLE.format(blob="BLOB"))
            self.lock = threading.Lock()
        else:
            self.pool = psycopg_pool.ConnectionPool(url, min_size=8, max_size=32, open=True,
                                                    kwargs={"autocommit": True})
            with self.pool.connection() as conn:
                conn.execute(CREATE_TABLE.format(blob="BYTEA"))

    def insert(self, body: bytes) -> None:
        if self.sqlite:
            with self.lock:
                self.db.execute("INSERT INTO floor VALUES (?)", (body,))
        else:
            with self.pool.connection() as conn:
                conn.execute("INSERT INTO floor VALUES (%s)", (body,))


class AsyncInserts:
    """The same INSERT through psycopg's async pool, awaited on the event loop (PostgreSQL only)."""

    def __init__(self, url: str):
        if url.startswith("sqlite:///"):
            raise ValueError("the floor on the event loop needs PostgreSQL")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(CREATE_TABLE.format(blob="BYTEA"))
        self.pool = psycopg_pool.AsyncConnectionPool(url, min_size=8, max_size=32, open=False,
                                                     kwargs={"autocommit": True})

    @contextlib.asynccontextmanager
    async def opened(self, _: Starlette) -> AsyncIterator[None]:
        await self.pool.open()
        try:
            yield
        finally:
            await self.pool.close()

    async def insert(self, body: bytes) -> None:
        async with self.pool.connection() as conn:
            await conn.execute("INSERT INTO floor VALUES (%s)", (body,))


def app(database: str, token: str, on_loop: bool = False) -> Starlette:
    root = ClientRecord("static/root", token, ["*"], datetime.now(timezone.utc) + timedelta(days=1))
    authenticator = HawkAuthenticator(lambda client_id: root if client_id == root.client_id else None,
                                      lambda scopes: ["*"], nonces=NonceStore())
    inserts = Inserts(database) if not on_loop else None
    async_inserts = AsyncInserts(database) if on_loop else None
    last_task = ["none"]

    def check(request: Request, body: bytes) -> None:
        result = authenticator.authenticate(hawk_request(request, body))
        if result.failed:
            raise PermissionError(result.message)

    def handle(request: Request, body: bytes) -> bytes:
        check(request, body)
        inserts.insert(body or request.url.path.encode())
        return answer(request)

    def answer(request: Request) -> bytes:
        path = request.url.path
        if path.startswith("/api/queue/v1/claim-work/"):
            return orjson.dumps({"tasks": [{"status": {"taskId": last_task[0]}, "runId": 0}]})
        if request.method == "PUT":
            last_task[0] = path.rsplit("/", 1)[1]
        return orjson.dumps({"status": {"taskId": last_task[0], "state": "pending"}})

    async def endpoint(request: Request) -> Response:
        body = await request.body()
        try:
            if async_inserts is None:
                answered = await asyncio.get_running_loop().run_in_executor(None, handle, request, body)
            else:
                check(request, body)
                await async_inserts.insert(body or request.url.path.encode())
                answered = answer(request)
        except PermissionError as e:
            return Response(orjson.dumps({"code": "AuthenticationFailed", "message": str(e)}), 401,
                            media_type="application/json")
        return Response(answered, media_type="application/json")

    async def ping(_: Request) -> Response:
        return Response(b'{"alive": true}', media_type="application/json")

    return Starlette(routes=[Route("/api/queue/v1/ping", ping),
                             Route("/api/{rest:path}", endpoint, methods=["GET", "PUT", "POST"])],
                     lifespan=async_inserts.opened if async_inserts else None)


class FloorServer(Server):
    """The floor server in a subprocess, on a fresh database, as the bench starts Cairn."""

    def __init__(self, backend: str, on_loop: bool = False):
        super().__init__(backend)
        self.on_loop = on_loop

    def command(self) -> list[str]:
        return [sys.executable, "-m", "bench.floor_server", "--port", str(self.port),
                "--database", self.url, f"--token={self.token}"  # a token may begin with "-"
                ] + (["--on-loop"] if self.on_loop else [])


def measure(backend: str, lifecycles: int, concurrency: int, on_loop: bool = False) -> dict[str, Any]:
    """The async generator's figures against the floor server."""
    from bench import load_figures

    with FloorServer(backend, on_loop) as server:
        return load_figures.measure(server, lifecycles, concurrency)


def compare(lifecycles: int, rounds: int = 3, concurrency: int = 64) -> None:
    """Server CPU per lifecycle of the floor with request threads and on the loop, interleaved, on PostgreSQL."""
    import statistics

    figures: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(rounds):
        for on_loop in (False, True):
            m = measure("postgres", lifecycles, concurrency, on_loop)
            figures[on_loop].append(m["server_cpu_ms_per_lifecycle"])
            print(f"{'on the loop' if on_loop else 'request threads'}: {m['server_cpu_ms_per_lifecycle']:.3f} ms, "
                  f"{m['lifecycles_per_s']:.0f}/s", flush=True)
    for on_loop, values in figures.items():
        print(f"median, {'on the loop' if on_loop else 'request threads'}: {statistics.median(values):.3f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--compare", type=int, metavar="LIFECYCLES",
                        help="measure the floor both ways, interleaved, and exit")
    parser.add_argument("--port", type=int)
    parser.add_argument("--database")
    parser.add_argument("--token")
    parser.add_argument("--on-loop", action="store_true",
                        help="check Hawk and INSERT on the event loop (psycopg's async pool), no request threads")
    args = parser.parse_args()
    if args.compare:
        compare(args.compare)
        return
    if not (args.port and args.database and args.token):
        parser.error("--port, --database and --token are required to serve")
    uvicorn.run(app(args.database, args.token, args.on_loop), host="127.0.0.1", port=args.port, log_level="warning",
                access_log=False)


if __name__ == "__main__":
    main()
