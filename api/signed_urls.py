"""Signed, time-limited URLs for object data, served by Cairn itself.

Data moves outside the Hawk-authenticated API, as it would to and from a
bucket: the service hands out a URL under ``/object-data/<token>`` that
allows exactly one thing — a PUT of one upload's data, or a GET of one
blob — until it expires. The token is its own claims, base64url-encoded
JSON, followed by an HMAC-SHA256 of them under a key derived from the
deployment key, so it cannot be guessed or altered, and every process of a
deployment accepts the URLs any of them made.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson

PATH = "/object-data/"


class InvalidToken(Exception):
    """The URL is not one this deployment signed, or it has expired."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class DataUrls:
    def __init__(self, key: str):
        self.key = hashlib.sha256(f"cairn:object-data:{key}".encode()).digest()

    def _sign(self, text: str) -> str:
        return _b64(hmac.new(self.key, text.encode(), hashlib.sha256).digest())

    def make(self, root_url: str, claims: dict[str, Any], lifetime: timedelta) -> tuple[str, datetime]:
        """A URL carrying ``claims``, valid for ``lifetime``; and when it expires."""
        expires = datetime.now(timezone.utc).replace(microsecond=0) + lifetime
        body = _b64(orjson.dumps({**claims, "e": int(expires.timestamp())}))
        return f"{root_url.rstrip('/')}{PATH}{body}.{self._sign(body)}", expires

    def upload_url(
        self, root_url: str, target: dict[str, Any], content_type: str, lifetime: timedelta,
        content_length: int | None = None,
    ) -> tuple[str, datetime]:
        claims = {"o": "put", "ct": content_type, **target}
        if content_length is not None:
            claims["cl"] = content_length
        return self.make(root_url, claims, lifetime)

    def download_url(
        self, root_url: str, blob: str, content_type: str, lifetime: timedelta,
        verify: tuple[int, str] | None = None,
    ) -> tuple[str, datetime]:
        """A GET URL of a blob; with ``verify`` (size, sha256), the server checks what it sends."""
        claims: dict[str, Any] = {"o": "get", "b": blob, "ct": content_type}
        if verify is not None:
            claims["sz"], claims["h"] = verify
        return self.make(root_url, claims, lifetime)

    def claims(self, token: str, operation: str) -> dict[str, Any]:
        body, _, signature = token.partition(".")
        if not signature or not hmac.compare_digest(signature, self._sign(body)):
            raise InvalidToken()
        try:
            claims = orjson.loads(_unb64(body))
        except (ValueError, orjson.JSONDecodeError):
            raise InvalidToken() from None
        if claims.get("o") != operation or claims.get("e", 0) < time.time():
            raise InvalidToken()
        return claims


@dataclass(frozen=True)
class DataLinks:
    """This deployment's data URLs: :class:`DataUrls` under its root URL."""

    urls: DataUrls
    root_url: str

    def upload_url(
        self, target: dict[str, Any], content_type: str, lifetime: timedelta, content_length: int | None = None
    ) -> tuple[str, datetime]:
        return self.urls.upload_url(self.root_url, target, content_type, lifetime, content_length)

    def download_url(
        self, blob: str, content_type: str, lifetime: timedelta, verify: tuple[int, str] | None = None
    ) -> tuple[str, datetime]:
        return self.urls.download_url(self.root_url, blob, content_type, lifetime, verify)

    def claims(self, token: str, operation: str) -> dict[str, Any]:
        return self.urls.claims(token, operation)
