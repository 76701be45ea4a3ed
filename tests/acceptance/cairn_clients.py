"""The official Taskcluster clients, taught the endpoints Cairn adds to a service.

Generated from the endpoint declarations themselves, so a test calls an
extra endpoint (``taskHistory``, ``clientHistory``...) exactly as declared.
"""

from __future__ import annotations

from typing import Any

from cairn.api.endpoints import Endpoint, Service


def funcinfo(endpoint: Endpoint) -> dict[str, Any]:
    """An endpoint as the official client's ``funcinfo`` describes one."""
    info: dict[str, Any] = {
        "args": endpoint.args,
        "method": endpoint.method.lower(),
        "name": endpoint.name,
        "query": list(endpoint.query),
        "route": endpoint.route,
        "stability": endpoint.stability,
    }
    if endpoint.input:
        info["input"] = f"v1/{endpoint.input}.json#"
    if endpoint.output:
        info["output"] = f"v1/{endpoint.output}.json#"
    return info


def cairn_client(official: type, service: Service) -> type:
    """A subclass of ``official`` with a method for each endpoint of ``service`` it lacks."""
    extra = {e.name: funcinfo(e) for e in service.endpoints if e.name not in official.funcinfo}

    def method(name: str) -> Any:
        def call(self: Any, *args: Any, **kwargs: Any) -> Any:
            return self._makeApiCall(self.funcinfo[name], *args, **kwargs)

        call.__name__ = name
        return call

    namespace = {"funcinfo": {**official.funcinfo, **extra}, **{name: method(name) for name in extra}}
    return type(f"Cairn{official.__name__}", (official,), namespace)
