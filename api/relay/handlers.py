"""The relay service: what a running task's worker sends out through Cairn, for anyone to read.

A worker needs no inbound connection: it pushes its run's log here as it is
written (``appendLog``, with the run's claim credentials, which hold
``queue:create-artifact:<taskId>/<runId>``) and points
``public/logs/live.log`` at ``liveLog``, which streams the log to any reader
as the chunks arrive, whichever server process received them (they are kept
in the database: ``projections/relay/live_logs.py``). The stream ends with
the worker's last append; once the run is over and its chunks are pruned,
the same URL redirects to the artifact, which is then the uploaded log.

Like Taskcluster's livelog, the read URL needs no credentials: it holds an
unguessable token that the worker chose, and it is only learnt by reading
the artifact, which takes ``queue:get-artifact:public/logs/live.log``.

Interactive shells use websockets beside these endpoints (``shells.py``).
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response, StreamingResponse

from cairn.api.call import Call
from cairn.api.endpoints import Service
from cairn.api.errors import InputError, RequestConflict, ResourceNotFound
from cairn.api.queue.route_params import RUN_ID, SLUGID
from cairn.api.relay.context import RelayContext
from cairn.projections.relay.live_logs import MAX_CHUNK, LogConflict

#: Seconds between looks at the database for more of a log, when no append reached this process.
POLL_SECONDS = 0.1
#: A log still unfinished this long after its run ended is not waited for any more (its worker is gone).
ABANDONED_AFTER = 10.0
LOG_HEADERS = {
    "Cache-Control": "no-cache",
    "Access-Control-Allow-Origin": "*",
    "X-Content-Type-Options": "nosniff",
    "X-Accel-Buffering": "no",
}
TOKEN = r"[A-Za-z0-9_-]{22,64}"
RUN = {"taskId": SLUGID, "runId": RUN_ID}

relay = Service(
    name="relay",
    title="Relay API",
    description=(
        "What a running task's worker sends out through Cairn, so that no one needs to reach the "
        "worker's machine: its live log, streamed to readers as it is written, and its interactive "
        "shells (websockets at /api/relay/v1/task/<taskId>/runs/<runId>/shell)."
    ),
)

RelayCall = Call[RelayContext]


def log_url(root_url: str, task_id: str, run_id: int, token: str) -> str:
    return f"{root_url}/api/relay/v1/task/{task_id}/runs/{run_id}/log/{token}"


@relay.endpoint(
    "appendLog",
    "POST",
    "/task/<taskId>/runs/<runId>/log",
    title="Append to a Live Log",
    category="Live logs",
    stability="experimental",
    scopes="queue:create-artifact:<taskId>/<runId>",
    input="append-log-request",
    output="append-log-response",
    params=RUN,
)
async def append_log(call: RelayCall) -> dict[str, Any]:
    """Add bytes at an offset of a run's live log; repeating an append is harmless, a gap is a conflict."""
    ctx = call.context
    task_id, run_id = call.params["taskId"], int(call.params["runId"])
    body = call.body
    try:
        data = base64.b64decode(body["data"], validate=True)
    except (binascii.Error, ValueError):
        raise InputError("data is not valid base64") from None
    if len(data) > MAX_CHUNK:
        raise InputError(f"An append holds at most {MAX_CHUNK} bytes")
    if await run_in_threadpool(ctx.run_state, task_id, run_id) is None:
        raise ResourceNotFound(f"Task {task_id} has no run {run_id}")
    try:
        state = await run_in_threadpool(
            ctx.logs.append, task_id, run_id, body["token"], body["offset"], data, body.get("final", False)
        )
    except LogConflict as e:
        raise RequestConflict(str(e)) from None
    ctx.wakeups.wake(("log", task_id, run_id))
    return {"size": state.size, "final": state.final, "url": log_url(ctx.root_url, task_id, run_id, state.token)}


@relay.endpoint(
    "liveLog",
    "GET",
    "/task/<taskId>/runs/<runId>/log/<token>",
    title="Follow a Live Log",
    category="Live logs",
    stability="experimental",
    params={**RUN, "token": TOKEN},
)
async def live_log(call: RelayCall) -> Response:
    """The log so far, then each append as it arrives, until the worker's last; text/plain."""
    ctx = call.context
    task_id, run_id, token = call.params["taskId"], int(call.params["runId"]), call.params["token"]
    state = await run_in_threadpool(ctx.logs.state, task_id, run_id)
    if state is None:
        run = await run_in_threadpool(ctx.run_state, task_id, run_id)
        if run is not None and run not in ("pending", "running"):
            # Over, and its chunks pruned: the artifact now leads to the uploaded log.
            artifact = f"{ctx.root_url}/api/queue/v1/task/{task_id}/runs/{run_id}/artifacts/public/logs/live.log"
            return RedirectResponse(artifact, status_code=303, headers=LOG_HEADERS)
        raise ResourceNotFound("No such live log.")
    if state.token != token:
        raise ResourceNotFound("No such live log.")
    return StreamingResponse(
        _follow(ctx, task_id, run_id), media_type="text/plain; charset=utf-8", headers=LOG_HEADERS
    )


async def _follow(ctx: RelayContext, task_id: str, run_id: int) -> AsyncIterator[bytes]:
    key = ("log", task_id, run_id)
    position = 0
    while True:
        data = await run_in_threadpool(ctx.logs.read, task_id, run_id, position)
        if data:
            position += len(data)
            yield data
            continue
        state = await run_in_threadpool(ctx.logs.state, task_id, run_id)
        if state is None or (state.final and position >= state.size):
            return
        if time.time() - state.updated > ABANDONED_AFTER:
            run = await run_in_threadpool(ctx.run_state, task_id, run_id)
            if run != "running":
                return
        await ctx.wakeups.wait(key, POLL_SECONDS)
