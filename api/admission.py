"""How many requests a server process takes on at once: a bound, and a clear 503 past it.

A request admitted holds memory, maybe a thread and a database connection
until it ends; without a bound, a flood of slow requests takes them all
and everyone waits. Two bounds, each answered with Taskcluster's
``ServiceUnavailable`` and ``Retry-After`` when reached:

- requests in flight (``max_requests``): every request but ``ping``,
  which does nothing and must keep answering while the rest queue;
- long polls (``max_long_polls``): claimWork, which may wait for work for
  many seconds, and the event stream and live logs, which stay open as long
  as there is more to come; they are counted apart from the other requests.
"""

from __future__ import annotations

import re
from typing import Any

from cairn.api import errors

Scope = dict[str, Any]

_PING = re.compile(r"/api/[^/]+/v1/ping\Z")
_LONG_POLLS = (
    ("POST", re.compile(r"/api/queue/v1/claim-work/")),
    ("GET", re.compile(r"/api/events/v1/stream\Z")),
    ("GET", re.compile(r"/api/relay/v1/task/[^/]+/runs/\d+/log/[^/]+\Z")),
)


def is_long_poll(method: str, path: str) -> bool:
    return any(method == m and pattern.match(path) for m, pattern in _LONG_POLLS)


class Admission:
    """ASGI middleware that admits requests up to the bounds above."""

    def __init__(self, app: Any, max_requests: int, max_long_polls: int) -> None:
        self.app = app
        self.max_requests = max_requests
        self.max_long_polls = max_long_polls
        self.requests = 0
        self.long_polls = 0

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or _PING.match(scope["path"]):
            await self.app(scope, receive, send)
            return
        if is_long_poll(scope["method"], scope["path"]):
            await self._admit(scope, receive, send, "long_polls", self.max_long_polls, "long polls")
        else:
            await self._admit(scope, receive, send, "requests", self.max_requests, "requests")

    async def _admit(self, scope: Scope, receive: Any, send: Any, counter: str, bound: int, what: str) -> None:
        if getattr(self, counter) >= bound:
            from cairn.api.app import error_response

            refusal = errors.ServiceUnavailable(
                f"This server is handling {bound} {what} already; retry in a moment."
            )
            await error_response(refusal)(scope, receive, send)
            return
        setattr(self, counter, getattr(self, counter) + 1)
        try:
            await self.app(scope, receive, send)
        finally:
            setattr(self, counter, getattr(self, counter) - 1)
