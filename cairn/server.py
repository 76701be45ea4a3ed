"""The HTTP application: every service mounted on one Starlette app."""

from __future__ import annotations

from starlette.applications import Starlette

from cairn.api import worker_api  # noqa: F401  (registers the worker endpoints on `queue`)
from cairn.api import artifact_api  # noqa: F401  (registers the artifact endpoints on `queue`)
from cairn.api import history_api  # noqa: F401  (registers the task and task-group history endpoints on `queue`)
from cairn.api.app import build_app
from cairn.api.auth_api import auth
from cairn.api.events_api import events
from cairn.api.index_api import index, root_listing_routes
from cairn.api.object_api import objects
from cairn.api.object_data import object_data_routes
from cairn.api.queue_api import queue
from cairn.api.references import reference_routes
from cairn.runtime import Runtime

SERVICES = [auth, queue, events, objects, index]


def create_app(runtime: Runtime) -> Starlette:
    return build_app(runtime, SERVICES, extra_routes=reference_routes(SERVICES) + object_data_routes() + root_listing_routes())


def app_from_env() -> Starlette:
    """The app of one of several server processes (``cairn serve --workers N``)."""
    from cairn.settings import Settings

    return create_app(Runtime(Settings.from_env()))
