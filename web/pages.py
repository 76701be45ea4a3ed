"""What every page shares: who is looking, rendering a template, and errors as pages.

A page handler is a plain function of the context, the request and the
visitor; ``page`` wraps it so that a missing scope becomes a 403 page that
says which scopes are missing (and offers to sign in), an unknown entity a
404 page, and anything unexpected a 500 page with an incident id that the
server's log explains.
"""

from __future__ import annotations

import functools
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlparse

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from cairn.api import errors
from cairn.domain import errors as domain_errors
from cairn.web.context import WebContext
from cairn.web.session import Visitor, visitor

log = logging.getLogger("cairn.web")

Handler = Callable[[WebContext, Request, Visitor], Response]

STATE_ORDER = ("unscheduled", "pending", "running", "completed", "failed", "exception")
RESOLVED = ("completed", "failed", "exception")
MAX_FORM = 64 * 1024


def render(ctx: WebContext, request: Request, who: Visitor, template: str, code: int = 200, **values: Any) -> Response:
    html = ctx.templates.get_template(template).render(request=request, visitor=who, path=request.url.path, **values)
    headers = {
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "X-Frame-Options": "DENY",
    }
    return HTMLResponse(html, status_code=code, headers=headers)


def page(ctx: WebContext, handler: Handler) -> Callable[[Request], Any]:
    """A Starlette endpoint running ``handler`` in a worker thread, its failures shown as pages."""

    def run(request: Request) -> Response:
        started, cpu = time.perf_counter(), time.thread_time()
        try:
            response = respond(request)
        except Exception:  # even the visitor could not be known (the database is away)
            incident = uuid.uuid4().hex
            log.exception("incident %s on %s", incident, request.url.path)
            response = HTMLResponse(f"Cairn could not make this page; incident id {incident}.\n", 503)
        # How long the page took to make, and the processor time it took (the
        # same unless the machine is busy), for the browser's developer tools.
        response.headers["Server-Timing"] = (
            f"app;dur={(time.perf_counter() - started) * 1000:.1f}, cpu;dur={(time.thread_time() - cpu) * 1000:.1f}"
        )
        return response

    def respond(request: Request) -> Response:
        who = visitor(ctx, request)
        try:
            return handler(ctx, request, who)
        except errors.InsufficientScopes as e:
            return render(ctx, request, who, "error.html", 403, title="Not allowed", message=e.message, sign_in=True)
        except (errors.ResourceNotFound, domain_errors.NotFound) as e:
            return render(ctx, request, who, "error.html", 404, title="Not found", message=e.message)
        except (errors.ApiError, domain_errors.DomainError) as e:
            status = getattr(e, "status", 409 if isinstance(e, domain_errors.Conflict) else 400)
            return render(ctx, request, who, "error.html", status, title="Refused", message=e.message)
        except Exception:
            incident = uuid.uuid4().hex
            log.exception("incident %s on %s", incident, request.url.path)
            return render(
                ctx, request, who, "error.html", 500, title="Something went wrong",
                message=f"Internal error; incident id {incident}.",
            )

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        # Forms are small and url-encoded: read here, on the event loop, for the handler's thread.
        request.state.form = {}
        if request.method == "POST":
            if not same_origin(ctx, request):
                return HTMLResponse("Forms are accepted only from this site's own pages.\n", 403)
            body = (await request.body())[:MAX_FORM].decode("utf-8", "replace")
            request.state.form = {k: v[0] for k, v in parse_qs(body).items()}
        return await run_in_threadpool(run, request)

    return endpoint


def same_origin(ctx: WebContext, request: Request) -> bool:
    """A form posted from another site is refused whatever it holds (the sign-in form has no session token)."""
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None or origin == "null" and request.headers.get("sec-fetch-site") == "same-origin":
        return True
    return urlparse(origin).netloc in (request.headers.get("host", ""), ctx.public_host)


def not_found(ctx: WebContext, request: Request, who: Visitor, what: str) -> Response:
    return render(ctx, request, who, "error.html", 404, title="Not found", message=what)
