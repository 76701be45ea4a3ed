"""The HTTP connection as Cairn serves it: uvicorn's httptools protocol, with deadlines and Taskcluster's errors.

uvicorn waits for a request's headers and body as long as a client cares
to send them, and answers what its parser refuses (an unknown method, a bad
``Content-Length``, a request line too long) with plain text. Here:

- a request's headers must all arrive within ``header_timeout`` seconds of
  its first byte (or of the connection, for the first request), and its
  body within ``body_timeout`` seconds of its headers — or of the last
  ``PROGRESS_BYTES`` it brought, so that a large upload that keeps moving
  is never cut while one that drips a byte at a time is. A client slower
  than that gets a 408 and the connection is closed; a handler waiting for
  the rest of the body sees the client as gone.
- every answer the parser gives itself is Taskcluster's JSON error body.

And a server whose root URL is not set hands out URLs of the address it
serves (:func:`with_served_root_url`), not of a default port.

Both deadlines are settings (``CAIRN_HEADER_TIMEOUT``, ``CAIRN_BODY_TIMEOUT``),
read when the first connection is made, so that every server process of
``cairn serve --workers N`` reads the same.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import os
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from cairn.api import errors
from cairn.domain.timestamps import iso, utcnow
from cairn.settings import PREFIX, Settings

ROOT_URL_VARIABLE = PREFIX + "ROOT_URL"
#: Body bytes that, once arrived, give a body another ``body_timeout`` seconds.
PROGRESS_BYTES = 64 * 1024


def with_served_root_url(settings: Settings, host: str, port: int) -> Settings:
    """``settings``, with the root URL of the address served unless ``CAIRN_ROOT_URL`` names one.

    Set in the environment too, so that every server process of
    ``--workers N`` hands out the same URLs.
    """
    if ROOT_URL_VARIABLE in os.environ:
        return settings
    shown = "127.0.0.1" if host in ("", "0.0.0.0") else "[::1]" if host == "::" else host
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    os.environ[ROOT_URL_VARIABLE] = root_url = f"http://{shown}:{port}"
    return dataclasses.replace(settings, root_url=root_url)


@functools.cache
def _deadlines() -> tuple[float, float]:
    settings = Settings.from_env()
    return settings.header_timeout, settings.body_timeout


def error_bytes(error: errors.ApiError) -> bytes:
    """A whole HTTP response carrying Taskcluster's error body, closing the connection."""
    time, status, code, message = iso(utcnow()), error.status, error.code, error.message
    body = orjson.dumps({
        "code": code,
        "message": f"{message}\n\n---\n\n* method:     unknown\n* errorCode:  {code}\n"
                   f"* statusCode: {status}\n* time:       {time}",
        "requestInfo": {"method": "unknown", "params": {}, "payload": {}, "time": time},
    })
    return b"".join([
        STATUS_LINE[status],
        b"content-type: application/json\r\n",
        b"content-length: " + str(len(body)).encode() + b"\r\n",
        b"connection: close\r\n\r\n",
        body,
    ])


class CairnHttpProtocol(HttpToolsProtocol):
    """uvicorn's protocol with read deadlines and Taskcluster's error bodies (see the module's text)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout, self.body_timeout = _deadlines()
        self._deadline: asyncio.TimerHandle | None = None
        self._reading = "headers"
        self._progress = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.header_timeout, "headers")

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._deadline is None and (self.cycle is None or self.cycle.response_complete):
            self._arm(self.header_timeout, "headers")  # the next request on a kept-alive connection
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._arm(self.body_timeout, "body")
        self._progress = 0
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        self._progress += len(body)
        if self._progress >= PROGRESS_BYTES and self._deadline is not None:
            self._arm(self.body_timeout, "body")
            self._progress = 0
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        self._disarm()
        if self.transport.is_closing():
            return
        self.transport.write(error_bytes(errors.MalformedPayload(f"The request is not valid HTTP/1.1: {msg}")))
        self.transport.close()

    def _arm(self, seconds: float, reading: str) -> None:
        self._disarm()
        self._reading = reading
        self._deadline = self.loop.call_later(seconds, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if not (self._reading == "body" and cycle is not None and cycle.response_started):
            seconds = self.header_timeout if self._reading == "headers" else self.body_timeout
            self.transport.write(error_bytes(
                errors.RequestTimeout(f"The request's {self._reading} did not arrive within {seconds:g} seconds.")
            ))
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True
            cycle.message_event.set()
        self.transport.close()
