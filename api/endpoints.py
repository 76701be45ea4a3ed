"""Endpoints declared as data.

A service is a list of :class:`Endpoint` records — name, method, route,
scope expression template, input and output schema, title, description —
each bound to a handler. Routing, input validation, authorization, the
Taskcluster API reference and the OpenAPI document are all generated from
these records, so they cannot disagree.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cairn.api.heartbeat import add_monitoring_endpoints

_ROUTE_PARAM = re.compile(r"<(\w+)>")

Handler = Callable[..., Any]
#: Scope parameters computed from the route parameters and the parsed body.
ScopeParams = Callable[[dict[str, str], Any], dict[str, Any]]


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    route: str
    handler: Handler
    title: str
    description: str
    category: str = ""
    scopes: Any = None
    input: str | None = None
    output: str | None = None
    query: tuple[str, ...] = ()
    stability: str = "stable"
    #: Route parameters that may contain slashes (artifact names, index paths).
    greedy: tuple[str, ...] = ()
    #: Regular expressions that route parameters must match.
    params: dict[str, str] = field(default_factory=dict)
    #: Scope parameters the request implies beyond its route and body
    #: (a domain function per endpoint, e.g. createTask's priorities).
    scope_params: ScopeParams | None = None
    #: Whether the handler decides authorization itself with ``call.authorize``,
    #: because the scope parameters are only known after loading an entity.
    deferred_auth: bool = False
    #: Bodies may be any JSON (no schema) but are still parsed.
    accepts_body: bool = False
    #: The handler authenticates the request itself, against clients of its
    #: own (testAuthenticate's fixed test client); the pipeline does not.
    own_authentication: bool = False
    #: On PostgreSQL with shared nonces, the request's Hawk nonce is recorded
    #: in the flight of its first command, not by a round trip before it
    #: (``projections/auth/hawk_nonces.py``): for handlers that change nothing
    #: outside units of work before their first command.
    nonce_in_command: bool = False
    #: Its blocking work is short and bounded whatever the request (one task's
    #: command or read): unless the settings say otherwise, it runs on the
    #: event loop instead of a request thread (``api/request_threads.py``).
    short: bool = False
    #: The OpenAPI responses of an endpoint that answers other than JSON
    #: (an image, a redirect); None for the JSON answers of every other.
    responses: dict[str, Any] | None = None

    @property
    def args(self) -> list[str]:
        return _ROUTE_PARAM.findall(self.route)

    def starlette_path(self) -> str:
        def convert(match: re.Match[str]) -> str:
            name = match[1]
            return "{%s:path}" % name if name in self.greedy else "{%s}" % name

        return _ROUTE_PARAM.sub(convert, self.route)

    def openapi_path(self) -> str:
        return _ROUTE_PARAM.sub(lambda m: "{%s}" % m[1], self.route)


async def _ping(call: Any) -> dict[str, Any]:
    """Respond without doing anything; shows that the server is up."""
    return {"alive": True, "uptime": call.uptime()}


def schema_uri(service_name: str, name: str | None) -> str | None:
    return f"/schemas/{service_name}/v1/{name}.json" if name else None


@dataclass
class Endpoints:
    """Endpoints declared in one module, in order; a :class:`Service` includes them."""

    endpoints: list[Endpoint] = field(default_factory=list)

    def endpoint(
        self,
        name: str,
        method: str,
        route: str,
        *,
        title: str,
        description: str = "",
        **options: Any,
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.endpoints.append(
                Endpoint(
                    name=name,
                    method=method,
                    route=route,
                    handler=handler,
                    title=title,
                    description=description or (handler.__doc__ or "").strip(),
                    **options,
                )
            )
            return handler

        return register


@dataclass(kw_only=True)
class Service(Endpoints):
    """A Taskcluster-style service; like Taskcluster's, each starts with ``ping``.

    Endpoints are declared on the service itself, or in modules of their own
    (each an :class:`Endpoints`) that the service then includes, in order.
    """

    name: str
    title: str
    description: str

    def __post_init__(self) -> None:
        self.endpoint("ping", "GET", "/ping", title="Ping Server", category="Monitoring")(_ping)
        add_monitoring_endpoints(self)

    def include(self, *parts: Endpoints) -> Service:
        for part in parts:
            self.endpoints.extend(part.endpoints)
        return self

    def schema_uri(self, name: str | None) -> str | None:
        return schema_uri(self.name, name)

    @property
    def base_path(self) -> str:
        return f"/api/{self.name}/v1"
