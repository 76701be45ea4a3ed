"""Where requests' blocking work runs: Hawk, input checks, the database.

Requests get a bounded pool of threads of their own, apart from the default
pool that the consumers' waits use. Past a handful of threads more do not
add throughput: they queue for the GIL and for the log's lock, and each
switch between them costs CPU (measured: ``bench/README.md``). A request
beyond the bound waits in the pool's queue, holding no thread and no
database connection.

The pool is asyncio's own executor rather than anyio's worker threads: a
hop to it costs a fraction of the CPU of one through anyio's limiter
(``bench/README.md``). The caller's context variables
(who is acting, for the events a command records) go with the call.

The short requests (``Endpoint.short``: the queue's task commands and task
reads) run on the event loop instead, each in a greenlet of its own
(``projections/store/loop_greenlets.py``), as many at once as there are
request threads. From a request thread, each of a command's statements (on
SQLite, which lets go of the GIL around each) or round trips (on
PostgreSQL) handed the GIL to the event loop and took it back: a pair of
context switches each. On the loop, SQLite's statements run without
hand-overs, and PostgreSQL's waits are the loop's own, which serves other
requests meanwhile. Measured under the async load: on SQLite, server CPU
per lifecycle fell by a third; on PostgreSQL, context switches fell by two
thirds while server CPU and lifecycles/s stayed where they were (the
loop's waits cost what the hand-overs did), and with one lifecycle in
flight lifecycles/s rose by about a tenth (``bench/README.md``). The
price, on SQLite: while one runs, nothing else on the loop does, for the
command's milliseconds or, if another process holds SQLite's lock, until
SQLite's busy timeout.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from starlette.applications import Starlette
from starlette.requests import Request

from cairn.projections.store.loop_greenlets import run_on_loop

T = TypeVar("T")


def give_request_threads(app: Starlette, threads: int) -> None:
    """Bound ``app``'s requests to ``threads`` at once on threads, and as many at once on the event loop.

    The bound on the loop keeps the commands there from asking the store's
    pool for more connections than it has free: past it, a command would
    wait for one on a thread of its own (``LoopAwarePostgresPool``).
    """
    app.state.request_threads = ThreadPoolExecutor(threads, thread_name_prefix="cairn-request")
    app.state.loop_slots = asyncio.Semaphore(threads)


def stop_request_threads(app: Starlette) -> None:
    """Let the threads end once the requests still running on them are done."""
    app.state.request_threads.shutdown(wait=False, cancel_futures=True)


async def on_loop_slot(request: Request, fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` on the event loop (``loop_greenlets.run_on_loop``), once fewer than the bound run there."""
    async with request.app.state.loop_slots:
        return await run_on_loop(fn, *args)


async def in_request_thread(request: Request, fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` on one of the app's request threads, in a copy of the caller's context."""
    context = contextvars.copy_context()
    return await asyncio.get_running_loop().run_in_executor(
        request.app.state.request_threads, context.run, fn, *args
    )
