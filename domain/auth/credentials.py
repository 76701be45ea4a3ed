"""Taskcluster access tokens and temporary credentials.

A temporary credential is a certificate that an issuing client signs with its
own access token: it names the scopes it grants, when it starts and expires
(milliseconds since the epoch, at most 31 days apart) and a random seed. The
temporary access token is an HMAC of that seed, so whoever knows the issuer's
access token can rebuild it; nothing about temporary credentials is stored.

Named certificates carry an ``issuer`` and are used under another clientId;
anonymous ones are used under the issuer's own clientId. Both are byte for
byte what Taskcluster's clients produce and its auth service accepts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from cairn.domain.auth.scopes import valid_scope

MAX_LIFETIME = timedelta(days=31)
CLOCK_TOLERANCE = timedelta(minutes=5)
SEED_LENGTH = 44

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_ONE_MS = timedelta(milliseconds=1)
_MAX_LIFETIME_MS = MAX_LIFETIME // _ONE_MS
_TOLERANCE_MS = CLOCK_TOLERANCE // _ONE_MS


@dataclass(frozen=True, slots=True)
class ClientRecord:
    """What authentication needs to know of a client."""

    client_id: str
    access_token: str
    scopes: Sequence[str]  # already expanded through roles
    expires: datetime  # timezone-aware
    disabled: bool = False


class InvalidCertificate(ValueError):
    """The certificate is malformed, wrongly signed, or not valid now."""


def generate_access_token() -> str:
    """A new permanent access token: 44 random URL-safe characters."""
    return secrets.token_urlsafe(33)


@dataclass(frozen=True, slots=True)
class Certificate:
    scopes: tuple[str, ...]
    start: int  # ms since the epoch
    expiry: int  # ms since the epoch
    seed: str
    signature: str
    issuer: str | None = None  # set for named temporary credentials

    @classmethod
    def parse(cls, value: object) -> Certificate:
        """Validate a certificate given as a JSON object or its text."""
        if isinstance(value, (str, bytes)):
            try:
                value = json.loads(value)
            except ValueError:
                raise InvalidCertificate("certificate is not valid JSON") from None
        if not isinstance(value, Mapping):
            raise InvalidCertificate("certificate must be a JSON object")
        version = value.get("version")
        if isinstance(version, bool) or version != 1:
            raise InvalidCertificate("certificate version must be 1")
        seed = value.get("seed")
        if not isinstance(seed, str) or len(seed) != SEED_LENGTH:
            raise InvalidCertificate(f"certificate seed must be {SEED_LENGTH} characters")
        start, expiry = _milliseconds(value.get("start")), _milliseconds(value.get("expiry"))
        if start is None or expiry is None:
            raise InvalidCertificate("certificate start and expiry must be numbers")
        if expiry - start > _MAX_LIFETIME_MS:
            raise InvalidCertificate("certificate cannot last longer than 31 days")
        scopes = value.get("scopes")
        if not isinstance(scopes, list) or not all(map(valid_scope, scopes)):
            raise InvalidCertificate("certificate scopes must be a list of valid scopes")
        issuer = value.get("issuer")
        if issuer is None and "clientId" in value:
            raise InvalidCertificate("certificate clientId requires an issuer")
        if issuer is not None and not isinstance(issuer, str):
            raise InvalidCertificate("certificate issuer must be a string")
        signature = value.get("signature")
        if not isinstance(signature, str):
            raise InvalidCertificate("certificate signature must be a string")
        return cls(tuple(scopes), start, expiry, seed, signature, issuer)

    @property
    def expires(self) -> datetime:
        return _EPOCH + self.expiry * _ONE_MS

    def check_in_effect(self, now: datetime) -> None:
        """Raise unless `now` lies in [start, expiry], give or take 5 minutes."""
        now_ms = _to_ms(now)
        if self.start > now_ms + _TOLERANCE_MS:
            raise InvalidCertificate("certificate is not yet valid")
        if self.expiry < now_ms - _TOLERANCE_MS:
            raise InvalidCertificate("certificate has expired")


def create_temporary_credentials(
    client_id: str,
    access_token: str,
    start: datetime,
    expiry: datetime,
    scopes: Iterable[str],
    name: str | None = None,
) -> dict[str, str]:
    """Issue temporary credentials signed by `client_id`.

    With `name`, the credentials are named: they are used under clientId
    `name`, which the issuer must hold ``auth:create-client:<name>`` for.
    Naive datetimes are taken as UTC, as the Taskcluster client does.
    """
    scopes = list(scopes)
    if not all(map(valid_scope, scopes)):
        raise ValueError("scopes must be printable ASCII strings")
    start_ms, expiry_ms = _to_ms(start), _to_ms(expiry)
    if expiry_ms < start_ms:
        raise ValueError("expiry is before start")
    if expiry_ms - start_ms > _MAX_LIFETIME_MS:
        raise ValueError("temporary credentials cannot last longer than 31 days")
    seed = secrets.token_urlsafe(33)
    fields: dict[str, object] = {
        "version": 1,
        "scopes": scopes,
        "start": start_ms,
        "expiry": expiry_ms,
        "seed": seed,
    }
    if name:
        fields["issuer"] = client_id
    issuer = client_id if name else None
    unsigned = Certificate(tuple(scopes), start_ms, expiry_ms, seed, signature="", issuer=issuer)
    fields["signature"] = _sign(unsigned, name or client_id, access_token)
    return {
        "clientId": name or client_id,
        "accessToken": _derive_access_token(access_token, seed),
        "certificate": json.dumps(fields, separators=(",", ":")),
    }


def verify_certificate(certificate: Certificate, issuer_access_token: str, client_id: str) -> str:
    """Check the signature and return the temporary access token.

    `client_id` is the id the credentials are presented under: the name of
    a named certificate, or the issuer itself for an anonymous one.
    """
    expected = _sign(certificate, client_id, issuer_access_token)
    if not hmac.compare_digest(expected.encode(), certificate.signature.encode()):
        raise InvalidCertificate("certificate signature is not valid")
    return _derive_access_token(issuer_access_token, certificate.seed)


def _sign(certificate: Certificate, client_id: str, access_token: str) -> str:
    lines = ["version:1"]
    if certificate.issuer is not None:
        lines += [f"clientId:{client_id}", f"issuer:{certificate.issuer}"]
    lines += [
        f"seed:{certificate.seed}",
        f"start:{certificate.start}",
        f"expiry:{certificate.expiry}",
        "scopes:",
        *certificate.scopes,
    ]
    digest = hmac.digest(access_token.encode(), "\n".join(lines).encode(), hashlib.sha256)
    return base64.b64encode(digest).decode()


def _derive_access_token(issuer_access_token: str, seed: str) -> str:
    digest = hmac.digest(issuer_access_token.encode(), seed.encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _to_ms(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return (moment - _EPOCH) // _ONE_MS


def _milliseconds(value: object) -> int | None:
    """An integral JSON number, as JavaScript would print it, or None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not value.is_integer():
        return None
    return int(value)
