"""The HTTP application: every service mounted on one Starlette app."""

from __future__ import annotations

from starlette.applications import Starlette

from cairn.api.app import build_app
from cairn.api.auth.handlers import auth
from cairn.api.events.handlers import events
from cairn.api.hooks.handlers import hooks
from cairn.api.index.handlers import index, root_listing_routes
from cairn.api.objects.data import object_data_routes
from cairn.api.objects.handlers import objects
from cairn.api.queue import (
    artifacts,  # noqa: F401  (registers the artifact endpoints on `queue`)
    history,  # noqa: F401  (registers the task and task-group history endpoints on `queue`)
    workers,  # noqa: F401  (registers the worker endpoints on `queue`)
)
from cairn.api.queue.tasks import queue
from cairn.api.references import reference_routes
from cairn.api.secrets.handlers import secrets
from cairn.runtime import Runtime

SERVICES = [auth, queue, events, objects, index, secrets, hooks]


def create_app(runtime: Runtime) -> Starlette:
    return build_app(runtime, SERVICES, extra_routes=reference_routes(SERVICES) + object_data_routes() + root_listing_routes())


def app_from_env() -> Starlette:
    """The app of one of several server processes (``cairn serve --workers N``)."""
    from cairn.settings import Settings

    return create_app(Runtime(Settings.from_env()))
