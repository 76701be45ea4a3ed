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

_ROUTE_PARAM = re.compile(r"<(\w+)>")

Handler = Callable[..., Any]


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
    #: Whether the handler decides authorization itself with ``call.authorize``,
    #: because the scope parameters are only known after loading an entity.
    deferred_auth: bool = False
    #: Bodies may be any JSON (no schema) but are still parsed.
    accepts_body: bool = False
    #: The handler authenticates the request itself, against clients of its
    #: own (testAuthenticate's fixed test client); the pipeline does not.
    own_authentication: bool = False

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
    return {"alive": True, "uptime": call.runtime.uptime()}


@dataclass
class Service:
    """A Taskcluster-style service; like Taskcluster's, each starts with ``ping``."""

    name: str
    title: str
    description: str
    endpoints: list[Endpoint] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.endpoint("ping", "GET", "/ping", title="Ping Server", category="Monitoring")(_ping)

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

    def schema_uri(self, name: str | None) -> str | None:
        return f"/schemas/{self.name}/v1/{name}.json" if name else None

    @property
    def base_path(self) -> str:
        return f"/api/{self.name}/v1"
