"""Every HTTP request, measured and logged once it is answered.

An ASGI middleware around the whole app: it times the request, notes the
status it was answered with, and then

- counts it in the app's :class:`~cairn.api.metrics.Metrics`, by service,
  endpoint and status;
- logs one ``request`` line on ``cairn.requests`` with its request id,
  clientId, service, endpoint, method, path, status and duration (in
  milliseconds), which ``CAIRN_LOG_FORMAT=json`` turns into fields.

The endpoint is the declared one that answered (Starlette leaves the
routed handler in the scope); other routes are named by their handler. The
clientId is noted in the scope by authentication.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cairn.api.metrics import Metrics

log = logging.getLogger("cairn.requests")

#: Where authentication notes the caller's clientId in the request's scope.
CLIENT_ID_KEY = "cairn.client_id"


def note_client_id(scope: dict[str, Any], client_id: str) -> None:
    scope[CLIENT_ID_KEY] = client_id


def endpoint_of(scope: Scope) -> tuple[str, str]:
    """(service, endpoint) of the handler that answered, or ("", name) outside the services."""
    handler = scope.get("endpoint")
    runner = getattr(handler, "__self__", None)
    declared = getattr(runner, "endpoint", None)
    service = getattr(runner, "service", None)
    if declared is not None and service is not None:
        return service.name, declared.name
    # No handler, or a mount's router that found no route under it.
    return "", getattr(handler, "__name__", "unrouted")


class RequestObserver:
    def __init__(self, app: ASGIApp, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, noting_status)
        finally:
            seconds = time.perf_counter() - started
            service, endpoint = endpoint_of(scope)
            self.metrics.observe_request(service, endpoint, status, seconds)
            if log.isEnabledFor(logging.INFO):
                self._log(scope, service, endpoint, status, seconds)

    def _log(self, scope: Scope, service: str, endpoint: str, status: int, seconds: float) -> None:
        headers = dict(scope.get("headers") or [])
        request_id = headers.get(b"x-request-id", b"").decode("latin-1") or uuid.uuid4().hex
        log.info(
            "%s %s %s", scope["method"], scope["path"], status,
            extra={
                "requestId": request_id,
                "clientId": scope.get(CLIENT_ID_KEY, "anonymous"),
                "service": service,
                "endpoint": endpoint,
                "method": scope["method"],
                "path": scope["path"],
                "status": status,
                "duration": round(seconds * 1000, 3),
            },
        )
