"""The auth service: clients, roles, scopes and request authentication."""

from __future__ import annotations

from typing import Any

from cairn.api.call import Call
from cairn.api.endpoints import Service

auth = Service(
    name="auth",
    title="Authentication API",
    description=(
        "Manages clients and roles, expands scopes through roles, and authenticates "
        "Hawk-signed requests for other services. Every change to a client or role is "
        "an event; their full history is available."
    ),
)


@auth.endpoint("ping", "GET", "/ping", title="Ping Server", category="Ping")
def ping(call: Call) -> dict[str, Any]:
    """Respond without doing anything; shows that the server is up."""
    call.authorize()
    return {"alive": True, "uptime": call.runtime.uptime()}
