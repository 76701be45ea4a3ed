"""The web UI's routes, at Taskcluster's UI paths (so links made for Taskcluster work here)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from cairn.api.contexts import ApiContexts
from cairn.web import (
    catalogue_pages,
    event_log_page,
    github_pages,
    live,
    log_pages,
    service_pages,
    signin_pages,
    task_pages,
)
from cairn.web.context import STATIC, WebContext, web_context
from cairn.web.pages import page


def _bound(ctx: WebContext, handler: Callable[[WebContext, Request], Awaitable[Response]]) -> Any:
    async def endpoint(request: Request) -> Response:
        return await handler(ctx, request)

    endpoint.__name__ = handler.__name__
    return endpoint


def web_routes(runtime: Any, api: ApiContexts) -> list[BaseRoute]:
    ctx = web_context(runtime, api)
    run = "/tasks/{taskId}/runs/{runId}"
    return [
        Route("/", page(ctx, catalogue_pages.home_page)),
        Route("/signin", page(ctx, signin_pages.signin_page), methods=["GET", "POST"]),
        Route("/signout", page(ctx, signin_pages.signout_page), methods=["POST"]),
        Route("/provisioners", page(ctx, catalogue_pages.provisioners_page)),
        Route("/auth/clients", page(ctx, catalogue_pages.clients_page)),
        Route("/auth/roles", page(ctx, catalogue_pages.roles_page)),
        Route("/hooks", page(ctx, service_pages.hooks_page)),
        Route("/hooks/{hookGroupId}/{hookId:path}", page(ctx, service_pages.hook_page)),
        Route("/secrets", page(ctx, service_pages.secrets_page)),
        Route("/github", page(ctx, github_pages.builds_page)),
        Route("/log", page(ctx, event_log_page.event_log_page)),
        Route("/log/live", _bound(ctx, live.log_changes)),
        Route("/tasks/index", page(ctx, catalogue_pages.index_page)),
        Route("/tasks/index/{namespace:path}", page(ctx, catalogue_pages.index_page)),
        Route("/tasks/groups/{taskGroupId}", page(ctx, task_pages.group_page)),
        Route("/tasks/groups/{taskGroupId}/live", _bound(ctx, live.group_changes)),
        Route("/tasks/{taskId}", page(ctx, task_pages.task_page)),
        Route("/tasks/{taskId}/live", _bound(ctx, live.task_changes)),
        Route("/tasks/{taskId}/history", page(ctx, task_pages.history_page)),
        Route("/tasks/{taskId}/{action}", page(ctx, task_pages.task_action), methods=["POST"]),
        Route(run + "/logs/live/{name:path}", page(ctx, log_pages.log_page)),
        Route(run + "/logs/stream/{name:path}", _bound(ctx, log_pages.log_stream)),
        Mount("/ui/static", StaticFiles(directory=STATIC), name="web-static"),
    ]
