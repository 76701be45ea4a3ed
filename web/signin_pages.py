"""Signing in and out of the web UI."""

from __future__ import annotations

from urllib.parse import urlparse

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from cairn.web.context import WebContext
from cairn.web.pages import render
from cairn.web.session import SignInFailed, Visitor, csrf_ok, sign_in, sign_out


def _local(target: str) -> str:
    """Only a path on this site to go back to after signing in (no open redirect)."""
    parsed = urlparse(target)
    if parsed.scheme or parsed.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def signin_page(ctx: WebContext, request: Request, who: Visitor) -> Response:
    if request.method == "GET":
        return render(ctx, request, who, "signin.html", back=_local(request.query_params.get("back", "/")))
    form = request.state.form
    back = _local(form.get("back", "/"))
    response = RedirectResponse(back, status_code=303)
    try:
        sign_in(ctx, response, form.get("clientId", "").strip(), form.get("accessToken", "").strip(),
                form.get("certificate", "").strip() or None)
    except SignInFailed as e:
        return render(ctx, request, who, "signin.html", 401, back=back, error=e.args[0],
                      client_id=form.get("clientId", ""))
    return response


def signout_page(ctx: WebContext, request: Request, who: Visitor) -> Response:
    if who.signed_in and not csrf_ok(who, request.state.form.get("csrf")):
        message = "This form did not come from your session."
        return render(ctx, request, who, "error.html", 403, title="Refused", message=message)
    response = RedirectResponse("/", status_code=303)
    sign_out(ctx, response)
    return response
