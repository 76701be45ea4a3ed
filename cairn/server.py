"""The HTTP application: every service mounted on one Starlette app."""

from __future__ import annotations

from starlette.applications import Starlette

from cairn.api.app import build_app
from cairn.api.auth_api import auth
from cairn.api.queue_api import queue
from cairn.api.references import reference_routes
from cairn.runtime import Runtime

SERVICES = [auth, queue]


def create_app(runtime: Runtime) -> Starlette:
    return build_app(runtime, SERVICES, extra_routes=reference_routes(SERVICES))
