"""The threads that run requests' blocking work: Hawk, input checks, the database.

Requests get a bounded pool of their own, apart from the default pool that
the consumers' waits use. Past a handful of threads more do not add
throughput: they queue for the GIL and for the log's lock, and each switch
between them costs CPU (on two cores, 8 threads instead of 40 gave a third
more lifecycles per second and a fifth less CPU per lifecycle). A request
beyond the bound waits on the event loop, holding no thread and no
database connection.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import anyio
from anyio import to_thread
from starlette.applications import Starlette
from starlette.requests import Request

T = TypeVar("T")


def give_request_threads(app: Starlette, threads: int) -> None:
    """Bound ``app``'s requests to ``threads`` at once."""
    app.state.request_threads = anyio.CapacityLimiter(threads)


async def in_request_thread(request: Request, fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` on one of the app's request threads."""
    return await to_thread.run_sync(fn, *args, limiter=request.app.state.request_threads)
