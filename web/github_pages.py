"""The github service's page: the builds started by GitHub events, most recently updated first.

The visitor's scopes are checked by asking the builds endpoint as the
visitor, like every listing (one without ``github:list-builds`` sees its
refusal); the most recent builds are then read from the builds view.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from cairn.api.github.handlers import github
from cairn.projections.github.views import build_json
from cairn.web.api_bridge import run_endpoint
from cairn.web.context import WebContext
from cairn.web.pages import render
from cairn.web.session import Visitor

#: How many of the most recent builds the page shows.
SHOWN = 200


def builds_page(ctx: WebContext, request: Request, who: Visitor) -> Response:
    run_endpoint(ctx.api, request, who.caller, github, "builds", query={"limit": "1"})
    builds = [build_json(row) for row in ctx.api.of("github").reads.recent_builds(SHOWN)]
    return render(ctx, request, who, "github.html", builds=builds, shown=SHOWN)
