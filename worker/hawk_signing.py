"""Signing requests and URLs with Taskcluster credentials, as the official clients do.

A request carries a Hawk ``Authorization`` header; a URL carries a ``bewit``
query parameter that authorizes GETs of exactly that URL until it expires.
Temporary credentials travel in Hawk's ``ext`` as their certificate.
"""

from __future__ import annotations

import json
import time
from typing import Any

import mohawk
import mohawk.base
import mohawk.bewit
from taskcluster import utils

#: How long a signed URL from the task proxy's ``/bewit`` stays valid, as taskcluster-proxy's do.
BEWIT_LIFETIME = 3600


def _plain(credentials: dict[str, Any]) -> dict[str, Any]:
    return {k: v.decode() if isinstance(v, bytes) else v for k, v in credentials.items()}


def hawk_ext(credentials: dict[str, Any]) -> str | None:
    """Hawk's ``ext`` for these credentials: their certificate, when they are temporary."""
    certificate = _plain(credentials).get("certificate")
    if not certificate:
        return None
    certificate = json.loads(certificate) if isinstance(certificate, str) else certificate
    encoded = utils.encodeStringForB64Header(utils.dumpJson({"certificate": certificate}))
    return utils.makeB64UrlSafe(encoded).decode()


def hawk_header(credentials: dict[str, Any], method: str, url: str, body: bytes, content_type: str) -> str:
    """A Hawk ``Authorization`` header, made as the taskcluster client makes it."""
    credentials = _plain(credentials)
    sender = mohawk.Sender(
        credentials={"id": credentials["clientId"], "key": credentials["accessToken"], "algorithm": "sha256"},
        ext=hawk_ext(credentials),
        url=url,
        method=method,
        content=body,
        content_type=content_type,
    )
    return sender.request_header


def bewit_url(credentials: dict[str, Any], url: str, lifetime: float = BEWIT_LIFETIME) -> str:
    """``url`` with a ``bewit`` that lets anyone GET it, as these credentials, for ``lifetime`` seconds."""
    credentials = _plain(credentials)
    base, hash_sign, fragment = url.partition("#")
    resource = mohawk.base.Resource(
        credentials={"id": credentials["clientId"], "key": credentials["accessToken"], "algorithm": "sha256"},
        method="GET",
        ext=hawk_ext(credentials),
        url=base,
        timestamp=int(time.time() + lifetime),
        nonce="",
    )
    bewit = mohawk.bewit.get_bewit(resource).rstrip("=")
    separator = "&" if "?" in base else "?"
    return f"{base}{separator}bewit={bewit}{hash_sign}{fragment}"
