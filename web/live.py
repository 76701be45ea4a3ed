"""Live updates: server-sent events telling an open page that what it shows has changed.

The group and task pages follow the event stream the events API serves
(``consumers/event_stream.py``): one in-memory subscription per open page,
filtered by routing key, so an idle page costs no database work. A browser
cannot sign an EventSource request with Hawk, so these small streams are
authorized by the visitor's session instead, with the scopes of the page
they belong to; each event only names the task that changed and its state,
and the page fetches its fresh fragment from the read model.

The deployment's event log (``/log``) changes with every commit, Pulse
message or not (a role changed, a client was used): its stream follows the
process-wide log signal.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from cairn.api.queue.service import queue
from cairn.domain.pulse_routing import RoutingKeyPattern, StreamFilter
from cairn.web.api_bridge import permitted
from cairn.web.context import WebContext
from cairn.web.session import visitor

HEARTBEAT_SECONDS = 15.0
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def sse(event: str, data: Any, event_id: str | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: ".encode() + orjson.dumps(data) + b"\n\n"


async def _task_changes(ctx: WebContext, pattern: str) -> AsyncIterator[bytes]:
    yield b": connected\n\n"
    items = ctx.event_stream.subscribe(StreamFilter(frozenset(), RoutingKeyPattern(pattern)), None)
    iterator = items.__aiter__()
    pending: asyncio.Task[Any] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(iterator.__anext__())
            done, _ = await asyncio.wait({pending}, timeout=HEARTBEAT_SECONDS)
            if not done:
                yield b": heartbeat\n\n"
                continue
            try:
                item = pending.result()
            except StopAsyncIteration:
                return
            pending = None
            status = item.message.body.get("status", {})
            yield sse("change", {"taskId": status.get("taskId"), "state": status.get("state")}, str(item.position))
    finally:
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                await pending
        await iterator.aclose()


def _refused() -> Response:
    return Response("Not allowed to follow this page.\n", 403, media_type="text/plain")


async def group_changes(ctx: WebContext, request: Request) -> Response:
    group_id = request.path_params["taskGroupId"]
    who = await run_in_threadpool(visitor, ctx, request)
    if not permitted(who.caller, queue, "getTaskGroup", taskGroupId=group_id):
        return _refused()
    # primary.<taskId>.<runId>.<workerGroup>.<workerId>.<provisionerId>.<workerType>.<schedulerId>.<taskGroupId>._
    pattern = f"primary.*.*.*.*.*.*.*.{group_id}.*"
    return StreamingResponse(_task_changes(ctx, pattern), media_type="text/event-stream", headers=SSE_HEADERS)


async def task_changes(ctx: WebContext, request: Request) -> Response:
    task_id = request.path_params["taskId"]
    who = await run_in_threadpool(visitor, ctx, request)
    if not permitted(who.caller, queue, "status", taskId=task_id):
        return _refused()
    changes = _task_changes(ctx, f"primary.{task_id}.#")
    return StreamingResponse(changes, media_type="text/event-stream", headers=SSE_HEADERS)


async def _log_moves(ctx: WebContext) -> AsyncIterator[bytes]:
    yield b": connected\n\n"
    seen = ctx.log_signal.generation
    while True:
        await run_in_threadpool(ctx.log_signal.wait, seen, HEARTBEAT_SECONDS)
        if ctx.log_signal.generation == seen:
            yield b": heartbeat\n\n"
            continue
        seen = ctx.log_signal.generation
        yield sse("change", {})
        await asyncio.sleep(0.25)  # a busy log refreshes the page at most four times a second


async def log_changes(ctx: WebContext, request: Request) -> Response:
    return StreamingResponse(_log_moves(ctx), media_type="text/event-stream", headers=SSE_HEADERS)
