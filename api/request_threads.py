"""The threads that run requests' blocking work: Hawk, input checks, the database.

Requests get a bounded pool of their own, apart from the default pool that
the consumers' waits use. Past a handful of threads more do not add
throughput: they queue for the GIL and for the log's lock, and each switch
between them costs CPU (measured: ``bench/README.md``). A request
beyond the bound waits in the pool's queue, holding no thread and no
database connection.

The pool is asyncio's own executor rather than anyio's worker threads: a
hop to it costs a fraction of the CPU of one through anyio's limiter
(``bench/README.md``). The caller's context variables
(who is acting, for the events a command records) go with the call.

On SQLite, the short requests (``Endpoint.short``: the queue's task
commands and task reads) run on the event loop instead. There every write
waits for the one writer and no statement waits on a network; Python's
sqlite3 lets go of the GIL around each statement, and with a request
thread that meant handing the GIL to the event loop and taking it back at
each of a command's statements, a pair of context switches each. On the
loop a command runs its statements without hand-overs: under the async
load, server CPU per lifecycle fell by a third (``bench/README.md``). The
price: while one runs, nothing else on the loop does, for the command's
milliseconds or, if another process holds SQLite's lock, until SQLite's
busy timeout. On PostgreSQL each command waits for round trips, which the
loop must not sit out: there they stay on request threads.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from starlette.applications import Starlette
from starlette.requests import Request

T = TypeVar("T")


def give_request_threads(app: Starlette, threads: int) -> None:
    """Bound ``app``'s requests to ``threads`` at once."""
    app.state.request_threads = ThreadPoolExecutor(threads, thread_name_prefix="cairn-request")


def stop_request_threads(app: Starlette) -> None:
    """Let the threads end once the requests still running on them are done."""
    app.state.request_threads.shutdown(wait=False, cancel_futures=True)


async def in_request_thread(request: Request, fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` on one of the app's request threads, in a copy of the caller's context."""
    context = contextvars.copy_context()
    return await asyncio.get_running_loop().run_in_executor(
        request.app.state.request_threads, context.run, fn, *args
    )
