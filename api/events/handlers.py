"""The events service: Cairn's Pulse messages as a resumable server-sent event stream.

``GET /api/events/v1/stream`` streams every message derived from the log,
filtered by ``exchange`` (repeatable; default all) and ``routingKey`` (an
AMQP topic pattern matched against the primary routing key and every
``route.<route>`` CC; default ``#``). Each event's ``id`` is its position
``<notification id>.<index>``; send it back as ``Last-Event-ID`` (or
``?from=``) to resume with no gap and no duplicate. Without a position the
stream starts at the present, and its first line names that position as an
``id`` with no data, so that a client who has seen no message yet can resume
from it too. Scopes: ``events:listen:<exchange>`` for each
exchange asked for (``events:listen:*`` when none is named).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.responses import StreamingResponse

from cairn.api.call import Call
from cairn.api.endpoints import Service
from cairn.api.errors import InvalidRequestArguments
from cairn.api.events.context import EventsContext
from cairn.domain.pulse_routing import Position, RoutingKeyPattern, StreamFilter

HEARTBEAT_SECONDS = 15.0
ALL_EXCHANGES = "*"

events = Service(
    name="events",
    title="Event Stream API",
    description=(
        "Every Pulse message Cairn derives from its log, as server-sent events that a "
        "client can filter by exchange and routing-key pattern and resume after a "
        "disconnect from the position it last saw."
    ),
)



@events.endpoint(
    "stream",
    "GET",
    "/stream",
    title="Stream Messages",
    category="Events",
    stability="experimental",
    scopes={"AllOf": [{"for": "exchange", "in": "exchanges", "each": "events:listen:<exchange>"}]},
    query=("exchange", "routingKey", "from"),
    deferred_auth=True,
)
async def stream(call: Call[EventsContext]) -> StreamingResponse:
    """Server-sent events: one per message, ``id`` = position, ``data`` = the message as JSON."""
    request = call.request
    exchanges = request.query_params.getlist("exchange")
    call.authorize(exchanges=exchanges or [ALL_EXCHANGES])
    pattern = call.query.get("routingKey", "#")
    start_text = request.headers.get("last-event-id") or call.query.get("from")
    try:
        start = Position.parse(start_text) if start_text else None
    except ValueError as e:
        raise InvalidRequestArguments(str(e)) from None
    stream_filter = StreamFilter(frozenset(exchanges), RoutingKeyPattern(pattern))
    if start is None:
        # "From now" is a position too, told to the client first: resuming from
        # it after a drop misses nothing, even when no message had come yet.
        start = await call.context.stream.now()
    items = call.context.stream.subscribe(stream_filter, start)
    return StreamingResponse(
        _sse(items, start),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _sse(items: AsyncIterator[Any], start: Position) -> AsyncIterator[bytes]:
    # An id with no data moves the client's last event id without dispatching an event.
    yield b": connected\nid: " + start.resume_id().encode() + b"\n\n"
    iterator = items.__aiter__()
    next_item: asyncio.Task[Any] | None = None
    try:
        while True:
            if next_item is None:
                next_item = asyncio.ensure_future(iterator.__anext__())
            done, _ = await asyncio.wait({next_item}, timeout=HEARTBEAT_SECONDS)
            if not done:
                yield b": heartbeat\n\n"
                continue
            try:
                item = next_item.result()
            except StopAsyncIteration:
                return
            next_item = None
            message = item.message
            data = {
                "position": str(item.position),
                "exchange": message.exchange,
                "routingKey": message.routing_key,
                "cc": message.cc,
                "messageId": message.message_id,
                "payload": message.body,
            }
            yield b"id: " + str(item.position).encode() + b"\nevent: message\ndata: " + orjson.dumps(data) + b"\n\n"
    finally:
        # The client went away (or the stream ended): stop the pending read,
        # let it finish unwinding, then close the subscription.
        if next_item is not None:
            next_item.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                await next_item
        await iterator.aclose()
