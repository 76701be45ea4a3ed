"""The HTTP application: every service mounted on one Starlette app."""

from __future__ import annotations

from starlette.applications import Starlette

from cairn.api.app import build_app
from cairn.api.auth_api import auth
from cairn.runtime import Runtime

SERVICES = [auth]


def create_app(runtime: Runtime) -> Starlette:
    return build_app(runtime, SERVICES)
