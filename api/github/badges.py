"""The badge and latest endpoints: a branch's most recent build, as an SVG or as a link.

Taskcluster asks GitHub for the statuses and check runs its bot set on the
branch; Cairn has its builds in the log, so it answers from the latest
build created for the branch (a push to it, or a pull request from it).
The badge's state is in ``X-Taskcluster-Status``: the build's state,
``newrepo`` for a branch with no build, ``nogithub`` when the App is not
installed for the owner either.
"""

from __future__ import annotations

from html import escape
from typing import Any

from starlette.responses import RedirectResponse, Response

from cairn.api.call import Call
from cairn.api.endpoints import Endpoints
from cairn.api.errors import ResourceNotFound
from cairn.api.github.context import GithubContext
from cairn.api.github.names import BRANCH

endpoints = Endpoints()

#: state → (text, colour) of the badge's right half.
BADGES = {
    "success": ("passing", "#2e7d32"),
    "failure": ("failing", "#c62828"),
    "error": ("error", "#c62828"),
    "pending": ("pending", "#9a6700"),
    "cancelled": ("cancelled", "#616161"),
    "newrepo": ("no builds", "#616161"),
    "nogithub": ("no builds", "#616161"),
}
LABEL = "taskcluster"
#: Roughly the width of a character of 11px Verdana, which badges are drawn in.
CHAR_WIDTH = 7


def badge_svg(state: str) -> str:
    """A flat two-part badge: ``taskcluster | <state>``."""
    text, colour = BADGES.get(state, (state, "#616161"))
    left, right = len(LABEL) * CHAR_WIDTH + 12, len(text) * CHAR_WIDTH + 12
    width = left + right
    label, value = escape(LABEL), escape(text)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="20" role="img" '
        f'aria-label="{label}: {value}"><title>{label}: {value}</title>'
        f'<rect width="{left}" height="20" fill="#555"/>'
        f'<rect x="{left}" width="{right}" height="20" fill="{colour}"/>'
        f'<g fill="#fff" text-anchor="middle" font-family="Verdana,DejaVu Sans,sans-serif" font-size="11">'
        f'<text x="{left / 2}" y="14">{label}</text><text x="{left + right / 2}" y="14">{value}</text></g></svg>'
    )


def _latest(call: Call[GithubContext]) -> dict[str, Any] | None:
    owner, repo, branch = call.params["owner"], call.params["repo"], call.params["branch"]
    return call.context.reads.latest_build(owner, repo, branch)


@endpoints.endpoint(
    "badge", "GET", "/repository/<owner>/<repo>/<branch>/badge.svg", title="Latest Build Status Badge",
    category="Github Service", scopes="github:get-badge:<owner>:<repo>:<branch>", stability="experimental",
    params=BRANCH, responses={
        "200": {"description": "The badge", "content": {"image/svg+xml": {"schema": {"type": "string"}}}},
    },
)
def badge(call: Call[GithubContext]) -> Response:
    """An SVG badge of the state of the branch's latest build."""
    build = _latest(call)
    if build is not None:
        state = build["state"]
    elif call.context.service.installation_id(call.params["owner"]) is None:
        state = "nogithub"
    else:
        state = "newrepo"
    return Response(
        badge_svg(state),
        media_type="image/svg+xml",
        headers={
            "Cache-Control": "no-cache, no-store, must-revalidate",
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
            "X-Taskcluster-Status": state,
        },
    )


@endpoints.endpoint(
    "latest", "GET", "/repository/<owner>/<repo>/<branch>/latest", title="Latest Status for Branch",
    category="Github Service", scopes="github:latest-status:<owner>:<repo>:<branch>",
    params=BRANCH, responses={"302": {"description": "To the page of the latest build's task group"}},
)
def latest(call: Call[GithubContext]) -> Response:
    """A redirect to the page of the task group of the branch's latest build."""
    build = _latest(call)
    if build is None:
        raise ResourceNotFound("Status not found")
    root = call.context.root_url.rstrip("/")
    return RedirectResponse(f"{root}/tasks/groups/{build['task_group_id']}", status_code=302)
