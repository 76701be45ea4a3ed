"""What a handler sees of one API call: its arguments, its caller, its service's context, and authorization."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from starlette.requests import Request

from cairn.api.endpoints import Endpoint
from cairn.api.errors import InsufficientScopes
from cairn.domain.auth.scope_templates import ScopeTemplate
from cairn.domain.auth.scopes import format_expression, remove_given_scopes, satisfies


@dataclass
class Caller:
    client_id: str
    scopes: list[str]
    scheme: str
    expires: str | None = None


Context = TypeVar("Context")


def _no_uptime() -> float:
    return 0.0


async def _no_checks() -> dict[str, str]:
    return {}


@dataclass
class Call(Generic[Context]):
    """One call; ``context`` is its service's (``QueueContext`` for the queue, ...)."""

    endpoint: Endpoint
    request: Request
    params: dict[str, str]
    query: dict[str, str]
    body: Any
    caller: Caller
    context: Context
    authorized: bool = False
    headers: dict[str, str] = field(default_factory=dict)
    #: Seconds since the server started (for ``ping``).
    uptime: Callable[[], float] = _no_uptime
    #: Whether what this process depends on answers (for ``heartbeat``): ``{check: "ok" | "error: ..."}``.
    health: Callable[[], Awaitable[dict[str, str]]] = _no_checks
    #: The request body as received, for a handler that checks a signature over it (GitHub's webhooks).
    raw: bytes = b""

    @property
    def client_id(self) -> str:
        return self.caller.client_id

    def satisfies(self, expression: Any) -> bool:
        return satisfies(self.caller.scopes, expression)

    def authorize(self, **extra: Any) -> None:
        """Check the endpoint's scope expression, with parameters known only now.

        The parameters are the route's, the body's, those the endpoint
        declares it computes from the request (``scope_params``), and ``extra``.
        """
        values = dict(self.params)
        if isinstance(self.body, dict):
            values.update(self.body)
        if self.endpoint.scope_params is not None:
            values.update(self.endpoint.scope_params(self.params, self.body))
        values.update(extra)
        template = scope_template(self.endpoint)
        if template is not None:
            require(self.caller, template.render(values))
        self.authorized = True


_templates: dict[str, ScopeTemplate | None] = {}


def scope_template(endpoint: Endpoint) -> ScopeTemplate | None:
    key = f"{endpoint.method} {endpoint.route}"
    if key not in _templates:
        _templates[key] = ScopeTemplate(endpoint.scopes) if endpoint.scopes else None
    return _templates[key]


def require(caller: Caller, expression: Any) -> None:
    """Raise InsufficientScopes unless the caller satisfies ``expression``."""
    if expression is None or satisfies(caller.scopes, expression):
        return
    missing = remove_given_scopes(caller.scopes, expression)
    raise InsufficientScopes(
        f"Client ID {caller.client_id} does not have sufficient scopes and is missing "
        f"the following scopes:\n\n```\n{format_expression(missing)}\n```\n\n"
        "This request requires the client to satisfy the following scope expression:"
        f"\n\n```\n{format_expression(expression)}\n```",
        required=expression,
        unsatisfied=missing,
    )
