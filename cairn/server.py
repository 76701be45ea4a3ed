"""The HTTP application: every service mounted on one Starlette app."""

from __future__ import annotations

from starlette.applications import Starlette

from cairn.api.app import build_app
from cairn.api.auth.handlers import auth
from cairn.api.events.handlers import events
from cairn.api.github.handlers import github
from cairn.api.hooks.handlers import hooks
from cairn.api.index.handlers import index, root_listing_routes
from cairn.api.metrics import Metrics, metrics_routes
from cairn.api.notify.handlers import notify
from cairn.api.objects.data import object_data_routes
from cairn.api.objects.handlers import objects
from cairn.api.purge_cache.handlers import purge_cache
from cairn.api.queue.service import queue
from cairn.api.references import reference_routes
from cairn.api.relay.handlers import relay
from cairn.api.relay.shells import shell_routes
from cairn.api.request_observer import RequestObserver
from cairn.api.schemas import load_schemas
from cairn.api.secrets.handlers import secrets
from cairn.collector import settle_for_serving
from cairn.contexts import api_contexts
from cairn.runtime import Runtime
from cairn.web.routes import web_routes

SERVICES = [auth, queue, events, objects, index, notify, secrets, hooks, github, purge_cache, relay]


def create_app(runtime: Runtime) -> Starlette:
    contexts = api_contexts(runtime)
    metrics = Metrics(runtime)
    extra_routes = reference_routes(SERVICES) + object_data_routes() + root_listing_routes() + metrics_routes(metrics)
    extra_routes += web_routes(runtime, contexts)  # the web UI (cairn.web)
    extra_routes += shell_routes()  # interactive shells: websockets beside the relay service
    app = build_app(runtime, contexts, SERVICES, extra_routes=extra_routes)
    app.add_middleware(RequestObserver, metrics=metrics)
    return app


def serving_app(runtime: Runtime) -> Starlette:
    """``create_app`` for a process that serves it until it ends: its collector settled once all is loaded,
    the schemas too."""
    app = create_app(runtime)
    # Otherwise the first request that checks a body parses them all (about half a
    # second) while every other request waits. Validators are still compiled on
    # first use: one takes about 0.3 ms, all 141 would hold about 10 MiB more.
    load_schemas()
    settle_for_serving()
    return app


def app_from_env() -> Starlette:
    """The app of one of several server processes (``cairn serve --workers N``)."""
    from cairn.logging_setup import configure_logging
    from cairn.settings import Settings

    settings = Settings.from_env()
    configure_logging(settings.log_level, settings.log_format)
    return serving_app(Runtime(settings))
