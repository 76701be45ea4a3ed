"""Webhook deliveries as GitHub sends them: real example payloads, signed with the App's secret."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from typing import Any

import httpx

from tests.conftest import reference_dir

WEBHOOK_SECRET = "webhook-secret-for-the-github-tests-3f9a"


def example(name: str) -> bytes:
    """The raw bytes of a real webhook payload, e.g. ``push.none.4``."""
    return (reference_dir("github/webhooks") / "github" / "webhooks" / f"{name}.json").read_bytes()


def example_json(name: str) -> dict[str, Any]:
    return json.loads(example(name))


def github_signature(raw: bytes, secret: str = WEBHOOK_SECRET) -> str:
    """``X-Hub-Signature-256`` as GitHub documents it: the hex HMAC-SHA256 of the body."""
    return "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


def delivery_id() -> str:
    return str(uuid.uuid4())


def deliver(
    root_url: str,
    event: str,
    raw: bytes,
    delivery: str | None = None,
    signature: str | None = "sign",
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
    http: httpx.Client | None = None,
) -> httpx.Response:
    """POST a delivery to the receiver with GitHub's headers; ``signature="sign"`` signs it properly,
    ``None`` leaves the header out."""
    sent = {
        "Content-Type": content_type,
        "User-Agent": "GitHub-Hookshot/044aadd",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or delivery_id(),
        "X-GitHub-Hook-ID": "292430182",
    }
    if signature == "sign":
        sent["X-Hub-Signature-256"] = github_signature(raw)
    elif signature is not None:
        sent["X-Hub-Signature-256"] = signature
    sent.update(headers or {})
    return (http or httpx).post(f"{root_url}/api/github/v1/github", content=raw, headers=sent, timeout=10)
