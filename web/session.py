"""Who is looking: a signed-in client's session, sealed in a cookie, or the anonymous role.

Signing in checks a clientId and access token (or temporary credentials)
exactly as an API request's Hawk signature is checked. A permanent token
never goes into the cookie: the session holds temporary credentials issued
from it, expiring with the session; they are sealed with the deployment key
(the same cipher that seals access tokens at rest) and checked again on
every page, so a disabled client, a deleted role or an expired
certificate takes effect at once. The session also carries the token that
every state-changing form must send back (against cross-site requests).
"""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson
from mohawk import Sender
from starlette.requests import Request
from starlette.responses import Response

from cairn.api.call import Caller
from cairn.api.hawk import ANONYMOUS_ROLE, HawkRequest
from cairn.domain.auth.credentials import create_temporary_credentials
from cairn.web.context import WebContext

COOKIE = "cairn_session"
LIFETIME = timedelta(hours=12)
#: Browsers keep cookies of up to 4096 bytes; a client with very many scopes signs in with fewer.
MAX_COOKIE = 4000
_CHECK_HOST = "cairn-session.invalid"


class SignInFailed(ValueError):
    """The credentials were refused."""


@dataclass(frozen=True)
class Visitor:
    caller: Caller
    signed_in: bool
    csrf: str = ""
    expires: datetime | None = None

    @property
    def client_id(self) -> str:
        return self.caller.client_id


def anonymous(ctx: WebContext) -> Visitor:
    return Visitor(Caller("anonymous", ctx.expand_scopes([ANONYMOUS_ROLE]), "none"), signed_in=False)


def check(ctx: WebContext, client_id: str, access_token: str, certificate: str | None) -> Caller:
    """The caller these credentials make, checked by the API's own Hawk authenticator."""
    ext = None
    if certificate:
        try:
            parsed = json.loads(certificate)
        except ValueError:
            raise SignInFailed("The certificate is not valid JSON.") from None
        ext = base64.b64encode(json.dumps({"certificate": parsed}).encode()).decode()
    try:
        sender = Sender(
            {"id": client_id, "key": access_token, "algorithm": "sha256"},
            f"http://{_CHECK_HOST}/", "GET", content="", content_type="", always_hash_content=False, ext=ext,
        )
    except Exception:
        raise SignInFailed("Those credentials cannot be used.") from None
    result = ctx.authenticator.authenticate(
        HawkRequest("GET", "/", _CHECK_HOST, 80, authorization=sender.request_header)
    )
    if result.failed or result.client_id is None:
        raise SignInFailed(f"Sign-in failed: {result.message or 'no credentials'}.")
    expires = result.expires.isoformat() if result.expires else None
    return Caller(result.client_id, result.scopes, "hawk", expires)


def sign_in(ctx: WebContext, response: Response, client_id: str, access_token: str, certificate: str | None) -> Visitor:
    caller = check(ctx, client_id, access_token, certificate)
    now = datetime.now(timezone.utc)
    expires = now + LIFETIME
    if certificate:
        credentials = {"clientId": client_id, "accessToken": access_token, "certificate": certificate}
        if caller.expires:
            expires = min(expires, datetime.fromisoformat(caller.expires))
    else:
        client = ctx.lookup_client(client_id)
        if client is None:
            raise SignInFailed("Sign-in failed: unknown client.")
        expires = min(expires, client.expires)
        credentials = create_temporary_credentials(
            client_id, access_token, now - timedelta(minutes=1), expires, client.scopes
        )
    session = {**credentials, "csrf": secrets.token_urlsafe(24), "expires": expires.timestamp()}
    sealed = ctx.cipher.seal(orjson.dumps(session).decode())
    if len(sealed) > MAX_COOKIE:
        raise SignInFailed("This client holds too many scopes for a browser session; use a client with fewer.")
    response.set_cookie(
        COOKIE, sealed, max_age=int((expires - now).total_seconds()), httponly=True, samesite="lax",
        secure=ctx.https, path="/",
    )
    return Visitor(caller, True, session["csrf"], expires)


def sign_out(ctx: WebContext, response: Response) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax", secure=ctx.https)


def visitor(ctx: WebContext, request: Request) -> Visitor:
    """The signed-in client of this request, or the anonymous visitor if there is none (or it lapsed)."""
    sealed = request.cookies.get(COOKIE)
    if not sealed:
        return anonymous(ctx)
    try:
        session: dict[str, Any] = orjson.loads(ctx.cipher.open(sealed))
        expires = datetime.fromtimestamp(float(session["expires"]), timezone.utc)
        if expires <= datetime.now(timezone.utc):
            return anonymous(ctx)
        caller = check(ctx, session["clientId"], session["accessToken"], session.get("certificate"))
    except (ValueError, KeyError, TypeError, SignInFailed):
        return anonymous(ctx)
    return Visitor(caller, True, session["csrf"], expires)


def csrf_ok(visitor: Visitor, token: str | None) -> bool:
    return bool(visitor.csrf) and bool(token) and secrets.compare_digest(visitor.csrf, token or "")
