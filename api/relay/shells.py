"""Interactive shells into running tasks, relayed through Cairn over websockets.

Two websockets meet here, both opened *to* Cairn, so that nothing connects
to the worker's machine:

- ``/api/relay/v1/task/<taskId>/runs/<runId>/shell/worker``: the worker of a
  task with ``features.interactive`` keeps this open while the task runs,
  signed with the run's claim credentials
  (``queue:create-artifact:<taskId>/<runId>``). Text messages, JSON, carry
  every session multiplexed: from Cairn ``{"type": "open", "session", "rows",
  "cols"}``, ``{"type": "data", "session", "data": <base64>}``,
  ``{"type": "resize", "session", "rows", "cols"}`` and ``{"type": "close",
  "session"}``; from the worker ``data`` and ``close`` (with ``reason``).
- ``/api/relay/v1/task/<taskId>/runs/<runId>/shell``: a client's shell
  (``cairn task shell``). The worker points the private artifact
  ``private/interactive/shell`` at it, and opening it takes the scope to read
  that artifact, ``queue:get-artifact:private/interactive/shell``, signed with
  Hawk (an ``Authorization`` header) as any call. Binary messages are the
  terminal's bytes both ways; a text message ``{"type": "resize", "rows",
  "cols"}`` resizes it. Cairn closes it (code 1000) when the shell exits or
  the task ends.

The two ends may be on different server processes: they meet in the
database (``projections/relay/shell_sessions.py``). Each end polls for the
other's frames every ``POLL_SECONDS``, and is woken at once when the other
end is in the same process.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import time
import uuid

from starlette.concurrency import run_in_threadpool
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from cairn.api import errors
from cairn.api.app import error_response
from cairn.api.call import Caller, require
from cairn.api.hawk import HawkRequest
from cairn.api.relay.context import RelayContext

log = logging.getLogger("cairn.relay")

SHELL_ARTIFACT = "private/interactive/shell"
POLL_SECONDS = 0.05
HEARTBEAT_SECONDS = 5.0
BASE = "/api/relay/v1/task/{taskId}/runs/{runId:int}/shell"


def shell_url(root_url: str, task_id: str, run_id: int) -> str:
    return f"{root_url}/api/relay/v1/task/{task_id}/runs/{run_id}/shell"


def _hawk_request(ws: WebSocket) -> HawkRequest:
    host_header = ws.headers.get("host", "")
    host, _, port = host_header.rpartition(":") if ":" in host_header else (host_header, "", "")
    if not port.isdigit():
        host, port = host_header, "443" if ws.url.scheme == "wss" else "80"
    resource = ws.scope.get("raw_path", ws.url.path.encode()).decode("latin-1")
    query = ws.scope.get("query_string", b"")
    if query:
        resource += "?" + query.decode("latin-1")
    return HawkRequest(
        method="GET", resource=resource, host=host, port=int(port),
        authorization=ws.headers.get("authorization"), source_ip=ws.client.host if ws.client else None,
    )


def _caller(ws: WebSocket) -> Caller:
    contexts = ws.app.state.contexts
    result = contexts.authentication.check(_hawk_request(ws))
    if result.failed:
        raise errors.AuthenticationFailed(f"Authentication failed: {result.message}")
    return Caller(client_id=result.client_id or "anonymous", scopes=result.scopes, scheme=result.scheme or "none")


async def _admit(ws: WebSocket, scope: str, want_state: str = "running") -> RelayContext | None:
    """The relay context if the caller holds ``scope`` and the run is ``running``; else deny and None."""
    ctx: RelayContext = ws.app.state.contexts.of("relay")
    task_id, run_id = ws.path_params["taskId"], ws.path_params["runId"]
    name = "shell"
    try:
        caller = await run_in_threadpool(_caller, ws)
        require(caller, scope)
        state = await run_in_threadpool(ctx.run_state, task_id, run_id)
        if state is None:
            raise errors.ResourceNotFound(f"Task {task_id} has no run {run_id}")
        if state != want_state:
            raise errors.RequestConflict(f"Run {run_id} of task {task_id} is {state}: it has no shell.")
    except errors.ApiError as e:
        await ws.send_denial_response(error_response(e, name))
        return None
    return ctx


# the client's end


async def client_shell(ws: WebSocket) -> None:
    task_id, run_id = ws.path_params["taskId"], ws.path_params["runId"]
    ctx = await _admit(ws, f"queue:get-artifact:{SHELL_ARTIFACT}")
    if ctx is None:
        return
    if not await run_in_threadpool(ctx.shells.endpoint_alive, task_id, run_id):
        error = errors.ResourceNotFound("This run offers no shell (it is not interactive, or its worker is gone).")
        await ws.send_denial_response(error_response(error, "shell"))
        return
    rows, cols = _size(ws.query_params.get("rows"), 24), _size(ws.query_params.get("cols"), 80)
    await ws.accept()
    session_id = await run_in_threadpool(ctx.shells.open_session, task_id, run_id, rows, cols)
    ctx.wakeups.wake(("endpoint", task_id, run_id))
    sending = asyncio.create_task(_client_output(ws, ctx, session_id, task_id, run_id))
    seq = 0
    try:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                break
            if message.get("bytes"):
                kind, data = "data", message["bytes"]
            elif message.get("text"):
                resize = _resize(message["text"])
                if resize is None:
                    continue
                kind, data = "resize", resize
            else:
                continue
            seq += 1
            await run_in_threadpool(ctx.shells.add_frame, session_id, "in", seq, kind, data)
            ctx.wakeups.wake(("in", session_id))
    finally:
        sending.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await sending
        await run_in_threadpool(ctx.shells.add_frame, session_id, "in", seq + 1, "close")
        ctx.wakeups.wake(("in", session_id))


async def _client_output(ws: WebSocket, ctx: RelayContext, session_id: str, task_id: str, run_id: int) -> None:
    seen = 0
    checked = time.monotonic()
    while True:
        if time.monotonic() - checked > HEARTBEAT_SECONDS:
            # The process holding the worker's end may have died without a word.
            if not await run_in_threadpool(ctx.shells.endpoint_alive, task_id, run_id):
                await ws.close(code=1011, reason="the worker's connection is gone")
                return
            checked = time.monotonic()
        frames = await run_in_threadpool(ctx.shells.frames_after, session_id, "out", seen)
        for seq, kind, data in frames:
            seen = seq
            if kind == "close":
                await ws.close(code=1000, reason=data.decode(errors="replace")[:120])
                return
            await ws.send_bytes(data)
        if frames:
            await run_in_threadpool(ctx.shells.passed, session_id, "out", seen)
        else:
            await ctx.wakeups.wait(("out", session_id), POLL_SECONDS)


def _size(value: str | None, default: int) -> int:
    return int(value) if value and value.isdigit() and 0 < int(value) < 1000 else default


def _resize(text: str) -> bytes | None:
    try:
        message = json.loads(text)
        rows, cols = int(message["rows"]), int(message["cols"])
    except (ValueError, KeyError, TypeError):
        return None
    if message.get("type") != "resize" or not (0 < rows < 1000 and 0 < cols < 1000):
        return None
    return json.dumps({"rows": rows, "cols": cols}).encode()


# the worker's end


async def worker_shell(ws: WebSocket) -> None:
    task_id, run_id = ws.path_params["taskId"], ws.path_params["runId"]
    ctx = await _admit(ws, f"queue:create-artifact:{task_id}/{run_id}")
    if ctx is None:
        return
    await ws.accept()
    connection = uuid.uuid4().hex
    await run_in_threadpool(ctx.shells.hold_endpoint, task_id, run_id, connection)
    relaying = asyncio.create_task(_to_worker(ws, ctx, task_id, run_id, connection))
    sequences: dict[str, int] = {}
    try:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                break
            frame = _worker_frame(message.get("text"))
            if frame is None:
                continue
            session_id, kind, data = frame
            sequences[session_id] = sequences.get(session_id, 0) + 1
            await run_in_threadpool(ctx.shells.add_frame, session_id, "out", sequences[session_id], kind, data)
            ctx.wakeups.wake(("out", session_id))
    except WebSocketDisconnect:
        pass
    finally:
        relaying.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await relaying
        left = await run_in_threadpool(ctx.shells.release_endpoint, task_id, run_id, connection)
        for session_id in left:
            seq = sequences.get(session_id, 0) + 1
            await run_in_threadpool(ctx.shells.add_frame, session_id, "out", seq, "close", b"the task has ended")
            ctx.wakeups.wake(("out", session_id))


def _worker_frame(text: str | None) -> tuple[str, str, bytes] | None:
    try:
        message = json.loads(text or "")
        session_id, kind = str(message["session"]), message["type"]
        if kind == "data":
            return session_id, kind, base64.b64decode(message["data"], validate=True)
        if kind == "close":
            return session_id, kind, str(message.get("reason", "the shell has exited")).encode()
    except (ValueError, KeyError, TypeError):
        pass
    return None


async def _to_worker(ws: WebSocket, ctx: RelayContext, task_id: str, run_id: int, connection: str) -> None:
    """Announce new sessions to the worker and pass on their clients' frames."""
    sessions: dict[str, int] = {}
    beat = time.monotonic()
    while True:
        busy = False
        if time.monotonic() - beat > HEARTBEAT_SECONDS:
            await run_in_threadpool(ctx.shells.hold_endpoint, task_id, run_id, connection)
            beat = time.monotonic()
        for new in await run_in_threadpool(ctx.shells.take_new_sessions, task_id, run_id):
            sessions[new["session"]] = 0
            await ws.send_text(json.dumps({"type": "open", **new}))
            busy = True
        for session_id, seen in list(sessions.items()):
            frames = await run_in_threadpool(ctx.shells.frames_after, session_id, "in", seen)
            if frames:
                await run_in_threadpool(ctx.shells.passed, session_id, "in", frames[-1][0])
            for seq, kind, data in frames:
                sessions[session_id] = seq
                busy = True
                if kind == "data":
                    await ws.send_text(json.dumps(
                        {"type": "data", "session": session_id, "data": base64.b64encode(data).decode()}
                    ))
                elif kind == "resize":
                    await ws.send_text(json.dumps({"type": "resize", "session": session_id, **json.loads(data)}))
                else:
                    await ws.send_text(json.dumps({"type": "close", "session": session_id}))
                    sessions.pop(session_id)
                    break
        if not busy:
            waits = [ctx.wakeups.wait(("in", s), POLL_SECONDS) for s in sessions]
            waits.append(ctx.wakeups.wait(("endpoint", task_id, run_id), POLL_SECONDS))
            waiting = [asyncio.ensure_future(w) for w in waits]
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiting:
                waiter.cancel()


def shell_routes() -> list[WebSocketRoute]:
    return [
        WebSocketRoute(BASE + "/worker", worker_shell),
        WebSocketRoute(BASE, client_shell),
    ]
