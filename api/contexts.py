"""What the HTTP application hands out: one context per service, and request authentication.

Built once per process by ``cairn/contexts.py``; each endpoint's handler
receives its service's context as ``call.context`` and sees nothing else.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from cairn.api.authentication import Authentication


@dataclass(frozen=True)
class ApiContexts:
    authentication: Authentication
    #: Service name (as in its URLs: ``queue``, ``auth``, ``object``...) → its context.
    services: dict[str, Any]
    uptime: Callable[[], float]
    health: Callable[[], Awaitable[dict[str, str]]]
    max_body_bytes: int
    #: The largest body of a request that is not signed (its sender unknown while it is read).
    unsigned_body_bytes: int
    validate_output: bool = False
    #: Whether short endpoints' blocking work runs on the event loop (``Settings.short_work_on_loop``).
    short_work_on_loop: bool = False

    def of(self, service_name: str) -> Any:
        return self.services[service_name]
