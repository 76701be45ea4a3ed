"""Taskcluster's monitoring endpoints beside ``ping``: heartbeat, load-balancer heartbeat and version.

Services that Taskcluster lists with them declare them here in one call.
"""

from __future__ import annotations

from typing import Any

from cairn.api.endpoints import Service

VERSION = {"source": "https://github.com/taskcluster/taskcluster", "version": "cairn", "commit": "", "build": ""}


def _heartbeat(call: Any) -> dict[str, Any]:
    """Respond with a service heartbeat: the services this one depends on answer."""
    return {}


def _lbheartbeat(call: Any) -> dict[str, Any]:
    """Respond to the load balancer: the server is up."""
    return {}


def _version(call: Any) -> dict[str, Any]:
    """Respond with what is running."""
    return dict(VERSION)


def add_health_endpoints(service: Service) -> None:
    service.endpoint("heartbeat", "GET", "/__heartbeat__", title="Heartbeat", category="Monitoring")(_heartbeat)
    service.endpoint("lbheartbeat", "GET", "/__lbheartbeat__", title="Load Balancer Heartbeat",
                     category="Monitoring")(_lbheartbeat)
    service.endpoint("version", "GET", "/__version__", title="Taskcluster Version", category="Monitoring")(_version)
