"""A run's log in the browser: followed while the task runs, ANSI colours rendered, every line linkable.

The page is a table; its rows arrive as server-sent events. The stream
finds the log as ``getArtifact`` would for the visitor (the same handler,
so the same scopes: none for ``public/`` names), reads it from where that
redirects — the live log on Cairn while the task runs, the stored
copy afterwards — and sends each batch of complete lines rendered to HTML
by ansi2html, which escapes the text and turns colour codes into classes.
An event's id is its last line number, so a reconnecting browser resumes
where it stopped. Only text read from an http(s) URL is shown, up to 64 MB.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote, urlparse

import aiohttp
from ansi2html import Ansi2HTMLConverter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from cairn.api.errors import ApiError
from cairn.api.queue.service import queue
from cairn.domain.errors import DomainError
from cairn.web.api_bridge import run_endpoint
from cairn.web.context import WebContext
from cairn.web.live import SSE_HEADERS, sse
from cairn.web.pages import render
from cairn.web.session import Visitor, visitor

READ_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=None)
MAX_LINE = 64 * 1024
MAX_LOG = 64 * 1024 * 1024


def log_page(ctx: WebContext, request: Request, who: Visitor) -> Response:
    task_id, run_id, name = (request.path_params[k] for k in ("taskId", "runId", "name"))
    status = run_endpoint(ctx.api, request, who.caller, queue, "status", {"taskId": task_id})["status"]
    stream = f"/tasks/{task_id}/runs/{run_id}/logs/stream/{quote(name, safe='')}"
    raw = f"/api/queue/v1/task/{task_id}/runs/{run_id}/artifacts/{quote(name, safe='/')}"
    return render(ctx, request, who, "log.html", task_id=task_id, run_id=run_id, name=name, stream=stream,
                  raw=raw, state=status["state"])


def _location(ctx: WebContext, request: Request, who: Visitor, params: dict[str, str]) -> str:
    response = run_endpoint(ctx.api, request, who.caller, queue, "getArtifact", params)
    if response.status_code != 303:
        raise ValueError("This artifact has no content to show (it is an error artifact).")
    location = response.headers["location"]
    if urlparse(location).scheme not in ("http", "https"):
        raise ValueError("This log is not at an http(s) URL.")
    return location


class LineRenderer:
    def __init__(self, first_line: int = 0):
        self.converter = Ansi2HTMLConverter(inline=False, dark_bg=True)
        self.pending = b""
        self.number = 0
        self.skip = first_line

    def feed(self, chunk: bytes, final: bool = False) -> list[list[Any]]:
        data = self.pending + chunk
        lines = data.split(b"\n")
        self.pending = b"" if final else lines.pop()
        if final and lines and lines[-1] == b"":
            lines.pop()
        if len(self.pending) > MAX_LINE:  # a line that never ends is shown in pieces
            lines.append(self.pending)
            self.pending = b""
        out = []
        for line in lines:
            self.number += 1
            if self.number <= self.skip:
                continue
            text = line.decode("utf-8", "replace").rstrip("\r")
            out.append([self.number, self.converter.convert(text, full=False)])
        return out


async def _follow(url: str, first_line: int) -> AsyncIterator[bytes]:
    yield b": connected\n\n"
    renderer = LineRenderer(first_line)
    read = 0
    try:
        async with aiohttp.ClientSession(timeout=READ_TIMEOUT) as session, session.get(url) as response:
            if response.status != 200:
                yield sse("failure", {"message": f"The log could not be read (HTTP {response.status})."})
                return
            if not response.content_type.startswith("text/"):
                yield sse("failure", {"message": f"This is not a text log ({response.content_type})."})
                return
            async for chunk in response.content.iter_any():
                read += len(chunk)
                if read > MAX_LOG:
                    yield sse("failure", {"message": "The log is too long to show here: open the raw log."})
                    return
                lines = renderer.feed(chunk)
                if lines:
                    yield sse("lines", lines, str(lines[-1][0]))
        lines = renderer.feed(b"", final=True)
        if lines:
            yield sse("lines", lines, str(lines[-1][0]))
    except aiohttp.ClientError as e:
        yield sse("failure", {"message": f"The log stopped: {type(e).__name__}."})
        return
    yield sse("end", {"lines": renderer.number})


async def log_stream(ctx: WebContext, request: Request) -> Response:
    params = {k: request.path_params[k] for k in ("taskId", "runId", "name")}
    who = await run_in_threadpool(visitor, ctx, request)
    try:
        url = await run_in_threadpool(_location, ctx, request, who, params)
    except (ApiError, DomainError, ValueError) as e:
        message = getattr(e, "message", str(e))

        async def refused() -> AsyncIterator[bytes]:
            yield sse("failure", {"message": message})

        return StreamingResponse(refused(), media_type="text/event-stream", headers=SSE_HEADERS)
    last = request.headers.get("last-event-id", "")
    return StreamingResponse(
        _follow(url, int(last) if last.isdigit() else 0), media_type="text/event-stream", headers=SSE_HEADERS
    )
