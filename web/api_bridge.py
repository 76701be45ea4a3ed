"""The UI acts and reads through the API's own endpoints: the same handlers, scope checks and services.

A page that lists clients, or a button that reruns a task, runs the
declared endpoint's handler with the visitor as its caller, so there is
one copy of every rule. ``permitted`` answers, without running anything,
whether the visitor's scopes satisfy an endpoint's declared expression
for given values (to decide which buttons to show).
"""

from __future__ import annotations

import inspect
import re
from typing import Any

from starlette.requests import Request

from cairn.api.call import Call, Caller, scope_template
from cairn.api.contexts import ApiContexts
from cairn.api.endpoints import Endpoint, Service
from cairn.api.errors import InvalidRequestArguments
from cairn.domain.aggregate import acting_as
from cairn.domain.auth.scopes import satisfies


def endpoint_named(service: Service, name: str) -> Endpoint:
    for endpoint in service.endpoints:
        if endpoint.name == name:
            return endpoint
    raise LookupError(f"{service.name} has no endpoint {name}")


def permitted(caller: Caller, service: Service, name: str, **values: Any) -> bool:
    template = scope_template(endpoint_named(service, name))
    return template is None or satisfies(caller.scopes, template.render(values))


def run_endpoint(
    api: ApiContexts,
    request: Request,
    caller: Caller,
    service: Service,
    name: str,
    params: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    body: Any = None,
) -> Any:
    """Run a (synchronous) endpoint's handler as ``caller``; raises the API's errors as the API would."""
    endpoint = endpoint_named(service, name)
    if inspect.iscoroutinefunction(endpoint.handler):
        raise TypeError(f"{name} is asynchronous; the UI runs only synchronous endpoints")
    for key, pattern in endpoint.params.items():
        value = (params or {}).get(key)
        if value is not None and not re.fullmatch(pattern, value):
            raise InvalidRequestArguments(f"{key}={value!r} must match {pattern}")
    call = Call(
        endpoint, request, dict(params or {}), dict(query or {}), body, caller, api.of(service.name), uptime=api.uptime
    )
    if not endpoint.deferred_auth:
        call.authorize()
    with acting_as(caller.client_id):
        result = endpoint.handler(call)
    if not call.authorized:
        raise RuntimeError(f"{name} did not authorize the call")
    return result
