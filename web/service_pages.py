"""The pages of the hooks and secrets services: hook groups, a hook with its schedule and fires, secret names.

Like the other listings they read through the API's own endpoints as the
visitor, so a page shows exactly what the visitor's scopes let a client
fetch. The secrets page shows names and expiry only: it never asks for a
value.
"""

from __future__ import annotations

from typing import Any

import yaml
from starlette.requests import Request
from starlette.responses import Response

from cairn.api.errors import ResourceNotFound
from cairn.api.hooks.handlers import hooks
from cairn.api.secrets.handlers import secrets
from cairn.domain.timestamps import iso, utcnow
from cairn.web.api_bridge import permitted, run_endpoint
from cairn.web.context import WebContext
from cairn.web.pages import render
from cairn.web.session import Visitor

LISTED = {"limit": "1000"}
FIRES_SHOWN = {"limit": "50"}


def hooks_page(ctx: WebContext, request: Request, who: Visitor) -> Response:
    groups = run_endpoint(ctx.api, request, who.caller, hooks, "listHookGroups")["groups"]
    listed = []
    for group in sorted(groups):
        entry: dict[str, Any] = {"hookGroupId": group, "hooks": None}
        if permitted(who.caller, hooks, "listHooks", hookGroupId=group):
            found = run_endpoint(ctx.api, request, who.caller, hooks, "listHooks", {"hookGroupId": group})["hooks"]
            entry["hooks"] = [{**hook, "status": _status(ctx, request, who, group, hook["hookId"])} for hook in found]
        listed.append(entry)
    return render(ctx, request, who, "hooks.html", groups=listed)


def hook_page(ctx: WebContext, request: Request, who: Visitor) -> Response:
    ids = {"hookGroupId": request.path_params["hookGroupId"], "hookId": request.path_params["hookId"]}
    definition = run_endpoint(ctx.api, request, who.caller, hooks, "hook", ids)
    fires = None
    if permitted(who.caller, hooks, "listLastFires", **ids):
        try:
            fires = run_endpoint(ctx.api, request, who.caller, hooks, "listLastFires", ids, FIRES_SHOWN)["lastFires"]
        except ResourceNotFound:  # never fired
            fires = []
    return render(
        ctx, request, who, "hook.html",
        hook=definition, status=_status(ctx, request, who, ids["hookGroupId"], ids["hookId"]), fires=fires,
        definition_yaml=yaml.safe_dump(definition, sort_keys=False, allow_unicode=True, width=100),
    )


def _status(ctx: WebContext, request: Request, who: Visitor, group: str, hook_id: str) -> dict[str, Any] | None:
    """The hook's last fire and next scheduled date, or None when the visitor may not see them."""
    ids = {"hookGroupId": group, "hookId": hook_id}
    if not permitted(who.caller, hooks, "getHookStatus", **ids):
        return None
    return run_endpoint(ctx.api, request, who.caller, hooks, "getHookStatus", ids)


def secrets_page(ctx: WebContext, request: Request, who: Visitor) -> Response:
    names = run_endpoint(ctx.api, request, who.caller, secrets, "list", query=LISTED)["secrets"]
    # The names are the endpoint's answer; only their expiry is read beside it, never a value.
    expiries = ctx.api.of("secrets").reads.expiries(iso(utcnow()), "", len(names) or 1)
    listed = [{"name": name, "expires": expiries.get(name)} for name in names]
    return render(ctx, request, who, "secrets.html", secrets=listed)
