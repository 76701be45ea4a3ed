"""From a Starlette request to an authenticated caller, or a 401.

The path of every request: :class:`Authentication` (built once, with the
contexts) checks the Hawk signature or bewit with :class:`HawkAuthenticator`,
which looks clients up and expands their scopes in the auth cache
(``projections/auth/cache.py``); :class:`ClientUse` notes each stored client
whose key signed an accepted request, so its ``lastDateUsed`` moves.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from cairn.api.call import Caller
from cairn.api.errors import AuthenticationFailed
from cairn.api.hawk import AuthResult, HawkAuthenticator, HawkRequest
from cairn.api.request_observer import note_client_id
from cairn.api.request_threads import in_request_thread
from cairn.projections.auth.cache import ClientUse


class Authentication:
    """Authenticates requests to Cairn, and requests that other services received."""

    def __init__(self, authenticator: HawkAuthenticator, client_use: ClientUse):
        self.authenticator = authenticator
        self.client_use = client_use

    def caller(self, request: Request, body: bytes) -> Caller:
        """The caller of a request to Cairn; raises AuthenticationFailed (401)."""
        with self.client_use.watching():
            return authenticate_now(self.authenticator, request, body)

    def deferring_nonce(self) -> Any:
        """Around a request whose Hawk nonce its first command may record (``hawk_nonces.py``)."""
        return self.authenticator.deferring_nonce()

    def check(self, request: HawkRequest) -> AuthResult:
        """authenticateHawk: the outcome for a request another service received."""
        with self.client_use.watching():
            return self.authenticator.authenticate(request)


def hawk_request(request: Request, body: bytes | None) -> HawkRequest:
    host_header = request.headers.get("host", "")
    host, _, port = host_header.rpartition(":") if ":" in host_header else (host_header, "", "")
    if not port.isdigit():
        host, port = host_header, "443" if request.url.scheme == "https" else "80"
    # Starlette builds request.url afresh on each access: read the scope instead.
    raw_path = request.scope.get("raw_path")
    resource = (raw_path if raw_path is not None else request.url.path.encode()).decode("latin-1")
    query = request.scope.get("query_string", b"")
    if query:
        resource += "?" + query.decode("latin-1")
    return HawkRequest(
        method=request.method,
        resource=resource,
        host=host,
        port=int(port),
        authorization=request.headers.get("authorization"),
        source_ip=request.client.host if request.client else None,
        body=body,
        content_type=request.headers.get("content-type"),
    )


async def authenticate(authenticator: HawkAuthenticator, request: Request, body: bytes | None) -> Caller:
    return await in_request_thread(request, authenticate_now, authenticator, request, body)


def authenticate_now(authenticator: HawkAuthenticator, request: Request, body: bytes | None) -> Caller:
    """Authenticate in this thread; the first request after an auth change may read the database."""
    result = authenticator.authenticate(hawk_request(request, body))
    if result.failed:
        raise AuthenticationFailed(f"Authentication failed: {result.message}")
    expires = result.expires.isoformat() if result.expires else None
    note_client_id(request.scope, result.client_id or "anonymous")
    return Caller(
        client_id=result.client_id or "anonymous",
        scopes=result.scopes,
        scheme=result.scheme or "none",
        expires=expires,
    )
