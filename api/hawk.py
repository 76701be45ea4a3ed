"""Hawk authentication of API requests, as Taskcluster's auth service does it.

`HawkAuthenticator.authenticate` turns a request's method, resource, host,
port and Authorization header (or ``bewit`` query parameter) into the
caller's clientId, scopes and expiry, or a terse failure. Credentials may
carry an ``ext`` with a temporary-credentials certificate and/or
``authorizedScopes``; every caller, and every request without credentials,
also holds the scopes of the ``anonymous`` role.

mohawk supplies the header grammar and the MAC. Its parse_authorization_header,
Resource and calculate_payload_hash pretty-print their input into a debug log
message on every call, whether or not debug logging is on (a cost per
request, measured in ``bench/README.md``), so on this per-request path the header is
parsed with mohawk's own grammar and the payload hash is computed directly.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any, Literal, NamedTuple

from mohawk.bewit import parse_bewit
from mohawk.exc import HawkFail
from mohawk.util import (
    HAWK_HEADER_RE,
    MAX_LENGTH,
    allowable_header_keys,
    calculate_mac,
    validate_header_attr,
)

from cairn.domain.auth.credentials import Certificate, ClientRecord, InvalidCertificate, verify_certificate
from cairn.domain.auth.scopes import satisfies as scope_satisfies
from cairn.domain.auth.scopes import valid_scope
from cairn.domain.timestamps import iso
from cairn.projections.auth.hawk_nonces import TIMESTAMP_SKEW_SECONDS, Nonces, NonceStore

ANONYMOUS_ROLE = "assume:anonymous"
_BEWIT_METHODS = frozenset({"GET", "HEAD"})  # node's hawk also accepts HEAD
_REQUIRED_HEADER_KEYS = ("id", "ts", "nonce", "mac")
_URLSAFE_TO_STANDARD = str.maketrans("-_", "+/")
_URLSAFE_BASE64 = re.compile(r"[A-Za-z0-9_-]+\Z")


@dataclass(frozen=True, slots=True)
class HawkRequest:
    method: str
    resource: str  # path and query, exactly as received
    host: str
    port: int
    authorization: str | None = None
    source_ip: str | None = None
    body: bytes | None = None  # None: the caller checks the returned hash itself
    content_type: str | None = None

    @classmethod
    def from_json(cls, payload: Mapping[str, Any]) -> HawkRequest:
        """The request as auth.authenticateHawk receives it."""
        return cls(
            method=payload["method"],
            resource=payload["resource"],
            host=payload["host"],
            port=int(payload["port"]),
            authorization=payload.get("authorization"),
            source_ip=payload.get("sourceIp"),
        )


@dataclass(frozen=True, slots=True)
class AuthResult:
    status: Literal["auth-success", "no-auth", "auth-failed"]
    scheme: Literal["hawk", "bewit", "none"] | None = None
    client_id: str | None = None
    scopes: list[str] = field(default_factory=list)
    expires: datetime | None = None
    hash: str | None = None
    message: str | None = None

    @property
    def failed(self) -> bool:
        return self.status == "auth-failed"

    def to_json(self) -> dict[str, Any]:
        """The body of Taskcluster's authenticateHawk response."""
        if self.failed:
            return {"status": self.status, "message": self.message}
        body: dict[str, Any] = {
            "status": self.status,
            "scheme": self.scheme,
            "scopes": self.scopes,
            "expires": _json_date(self.expires),
        }
        if self.client_id is not None:
            body["clientId"] = self.client_id
        if self.hash is not None:
            body["hash"] = self.hash
        return body


ClientLookup = Callable[[str], ClientRecord | None]
ScopeExpander = Callable[[list[str]], list[str]]
Satisfies = Callable[[Sequence[str], str | dict[str, Any]], bool]


class _Failure(Exception):
    """Authentication failed; the message is safe to show the caller."""


class _Caller(NamedTuple):
    client_id: str
    access_token: str
    scopes: Sequence[str]  # before the final expansion
    expires: datetime


class _Ext(NamedTuple):
    certificate: Certificate | None
    authorized_scopes: tuple[str, ...] | None


class _Signed(NamedTuple):
    """What a Hawk MAC covers besides the payload hash: the attributes of a
    mohawk Resource that mohawk.util.calculate_mac reads."""

    credentials: Mapping[str, str]
    timestamp: str
    nonce: str
    method: str
    name: str
    host: str
    port: str
    ext: str | None
    app: str | None
    dlg: str | None


class HawkAuthenticator:
    def __init__(
        self,
        lookup_client: ClientLookup,
        expand_scopes: ScopeExpander,
        satisfies: Satisfies | None = None,
        nonces: Nonces | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._lookup_client = lookup_client
        self._expand_scopes = expand_scopes
        self._satisfies = satisfies or scope_satisfies
        self._nonces = nonces if nonces is not None else NonceStore()
        self._clock = clock

    def deferring_nonce(self) -> Any:
        """Around one request: its nonce may be recorded by its first command (``Nonces.deferring``)."""
        return self._nonces.deferring()

    def authenticate(self, request: HawkRequest) -> AuthResult:
        now = self._clock()
        try:
            bewit = _split_bewit(request.resource)
            if request.authorization is not None:
                if bewit is not None:
                    raise _Failure("cannot use a bewit and an Authorization header together")
                return self._authenticate_header(request, now)
            if bewit is not None:
                return self._authenticate_bewit(request, *bewit, now)
        except _Failure as failure:
            return AuthResult("auth-failed", message=str(failure))
        return AuthResult(
            "no-auth",
            scheme="none",
            scopes=self._expand_scopes([ANONYMOUS_ROLE]),
            expires=_to_datetime(now + TIMESTAMP_SKEW_SECONDS),
        )

    def _authenticate_header(self, request: HawkRequest, now: float) -> AuthResult:
        attributes = _parse_header(request.authorization or "")
        client_id, timestamp, nonce = attributes["id"], attributes["ts"], attributes["nonce"]
        ext = attributes.get("ext")
        caller = self._caller(client_id, ext, now)
        their_hash = attributes.get("hash")
        signed = _Signed(
            _credentials(caller), timestamp, nonce, request.method.upper(), request.resource,
            request.host, str(request.port), ext, attributes.get("app"), attributes.get("dlg"),
        )  # fmt: skip
        mac = calculate_mac("header", signed, their_hash)
        if not hmac.compare_digest(mac, attributes["mac"].encode()):
            raise _Failure("bad mac")
        if not timestamp.isdigit() or abs(int(timestamp) - now) > TIMESTAMP_SKEW_SECONDS:
            raise _Failure("stale timestamp")
        if their_hash is not None and request.body is not None:
            payload_hash = _payload_hash(request.body, request.content_type)
            if not hmac.compare_digest(payload_hash, their_hash.encode()):
                raise _Failure("payload does not match its hash")
        if not self._nonces.first_use(client_id, timestamp, nonce, now):
            raise _Failure("nonce already used")
        return self._success("hawk", caller, their_hash)

    def _authenticate_bewit(
        self, request: HawkRequest, encoded: str, resource: str, now: float
    ) -> AuthResult:
        if request.method.upper() not in _BEWIT_METHODS:
            raise _Failure("bewit is only allowed for GET requests")
        bewit = _decode_bewit(encoded)
        if not bewit.expiration.isdigit():
            raise _Failure("invalid bewit")
        if int(bewit.expiration) <= now:
            raise _Failure("bewit has expired")
        caller = self._caller(bewit.id, bewit.ext or None, now)
        signed = _Signed(
            _credentials(caller), bewit.expiration, "", "GET", resource, request.host,
            str(request.port), bewit.ext, None, None,
        )  # fmt: skip
        if not hmac.compare_digest(calculate_mac("bewit", signed, None), bewit.mac.encode()):
            raise _Failure("bad mac")
        return self._success("bewit", caller, None)

    def _success(
        self, scheme: Literal["hawk", "bewit"], caller: _Caller, hash: str | None
    ) -> AuthResult:
        scopes = self._expand_scopes([*caller.scopes, ANONYMOUS_ROLE])
        return AuthResult("auth-success", scheme, caller.client_id, scopes, caller.expires, hash)

    def _caller(self, client_id: str, ext_text: str | None, now: float) -> _Caller:
        """Who signs the request, with which key, holding which scopes."""
        ext = _parse_ext(ext_text) if ext_text else _Ext(None, None)
        certificate = ext.certificate
        issuer_id = client_id
        if certificate is not None and certificate.issuer is not None:
            if certificate.issuer == client_id:
                raise _Failure("certificate issuer must differ from the clientId")
            issuer_id = certificate.issuer
        issuer = self._load_client(issuer_id, now)
        caller = _Caller(client_id, issuer.access_token, issuer.scopes, issuer.expires)
        if certificate is not None:
            caller = self._apply_certificate(certificate, caller, issuer, now)
        if ext.authorized_scopes is not None:
            held = self._expand_scopes([*caller.scopes, ANONYMOUS_ROLE])
            if not self._satisfies(held, {"AllOf": list(ext.authorized_scopes)}):
                raise _Failure("authorizedScopes are not satisfied by the credentials' scopes")
            caller = caller._replace(scopes=ext.authorized_scopes)
        return caller

    def _apply_certificate(
        self, certificate: Certificate, caller: _Caller, issuer: ClientRecord, now: float
    ) -> _Caller:
        try:
            certificate.check_in_effect(_to_datetime(now))
            if certificate.issuer is not None:
                if not self._satisfies(issuer.scopes, f"auth:create-client:{caller.client_id}"):
                    raise _Failure("certificate issuer may not create this clientId")
            if not self._satisfies(issuer.scopes, {"AllOf": list(certificate.scopes)}):
                raise _Failure("certificate scopes exceed the issuer's scopes")
            access_token = verify_certificate(certificate, issuer.access_token, caller.client_id)
        except InvalidCertificate as invalid:
            raise _Failure(str(invalid)) from None
        expires = min(issuer.expires, certificate.expires)
        return _Caller(caller.client_id, access_token, certificate.scopes, expires)

    def _load_client(self, client_id: str, now: float) -> ClientRecord:
        client = self._lookup_client(client_id)
        if client is None:
            raise _Failure("unknown client")
        if client.disabled:
            raise _Failure("client is disabled")
        if client.expires.timestamp() < now:
            raise _Failure("client has expired")
        return client


def _parse_header(header: str) -> dict[str, str]:
    """Hawk header attributes, by mohawk's grammar and limits."""
    scheme, _, rest = header.partition(" ")
    if scheme.lower() != "hawk" or len(header) > MAX_LENGTH:
        raise _Failure("invalid Hawk header")
    attributes: dict[str, str] = {}

    def collect(match: Any) -> str:
        key, value = match.group("key", "value")
        if key not in allowable_header_keys or key in attributes:
            raise _Failure("invalid Hawk header")
        validate_header_attr(value, name=key)
        attributes[key] = value
        return ""

    try:
        unparsed = HAWK_HEADER_RE.sub(collect, rest)
    except HawkFail:
        raise _Failure("invalid Hawk header") from None
    if unparsed or not all(attributes.get(key) for key in _REQUIRED_HEADER_KEYS):
        raise _Failure("invalid Hawk header")
    return attributes


@lru_cache(maxsize=1024)
def _parse_ext(text: str) -> _Ext:
    """The ext attribute: base64 (either alphabet) of a JSON object."""
    try:
        ext = json.loads(_b64decode(text))
    except ValueError:
        raise _Failure("invalid ext") from None
    if not isinstance(ext, dict):
        raise _Failure("invalid ext")
    certificate = ext.get("certificate")
    if certificate is not None:
        if not isinstance(certificate, dict):
            raise _Failure("certificate must be a JSON object")
        try:
            certificate = Certificate.parse(certificate)
        except InvalidCertificate as invalid:
            raise _Failure(str(invalid)) from None
    authorized = ext.get("authorizedScopes")
    if authorized is not None:
        if not isinstance(authorized, list) or not all(valid_scope(scope) for scope in authorized):
            raise _Failure("authorizedScopes must be a list of valid scopes")
        authorized = tuple(authorized)
    return _Ext(certificate, authorized)


def _split_bewit(resource: str) -> tuple[str, str] | None:
    """(bewit, resource without it), or None when there is no bewit."""
    if "bewit=" not in resource:
        return None
    path, _, query = resource.partition("?")
    params = query.split("&")
    bewits = [param[len("bewit="):] for param in params if param.startswith("bewit=")]
    if not bewits:
        return None
    if len(bewits) > 1:
        raise _Failure("invalid bewit")
    rest = "&".join(param for param in params if not param.startswith("bewit="))
    return bewits[0], f"{path}?{rest}" if rest else path


def _decode_bewit(encoded: str) -> Any:
    # Clients send the bewit URL-safe and unpadded; mohawk parses standard base64.
    if not _URLSAFE_BASE64.match(encoded):
        raise _Failure("invalid bewit")
    standard = encoded.translate(_URLSAFE_TO_STANDARD) + "=" * (-len(encoded) % 4)
    try:
        return parse_bewit(standard)
    except (HawkFail, ValueError):
        raise _Failure("invalid bewit") from None


def _credentials(caller: _Caller) -> dict[str, str]:
    return {"key": caller.access_token, "algorithm": "sha256"}


def _payload_hash(body: bytes, content_type: str | None) -> bytes:
    media_type = (content_type or "").split(";")[0].strip().lower()
    digest = hashlib.sha256(b"hawk.1.payload\n")
    digest.update(media_type.encode() + b"\n")
    digest.update(body)
    digest.update(b"\n")
    return base64.b64encode(digest.digest())


def _b64decode(text: str) -> bytes:
    standard = text.translate(_URLSAFE_TO_STANDARD).rstrip("=")
    try:
        return base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
    except binascii.Error:
        raise ValueError("not base64") from None


def _to_datetime(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=timezone.utc)


def _json_date(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return iso(moment)
