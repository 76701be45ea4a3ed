"""The webhook receiver: GitHub's deliveries, verified, recorded, and answered at once.

GitHub signs each delivery with the App's webhook secret: ``X-Hub-Signature-256``
is ``sha256=`` and the hex HMAC-SHA256 of the raw body. The receiver checks it
(in constant time) before reading anything else of the request, and refuses
a missing or wrong signature with ``AuthenticationFailed`` (401), recording
nothing. A deployment without ``CAIRN_GITHUB_WEBHOOK_SECRET`` cannot tell
GitHub from anyone else, so it refuses every delivery the same way, saying
so: an unsigned body is never accepted. (Taskcluster answers 400 or 403 in
plain text, and accepts unsigned deliveries when it has no secret.)

A verified delivery is recorded as one event, keyed by ``X-GitHub-Delivery``:
a redelivery is answered the same and changes nothing. The request does
nothing else; consumers that follow the log act on the delivery, so a crash
after the answer loses nothing. ``ping`` and ``installation`` deliveries are
recorded too (the latter tells which owners the App is installed for) and
build nothing. GitHub may send the body as JSON or, if so configured, as a
form with a ``payload`` field; both are read. The body is read before its
signature can be checked, so it is bounded as every unsigned body is:
``CAIRN_UNSIGNED_BODY_BYTES`` (1 MiB by default; GitHub sends at most 25 MB)
answers a larger delivery with 413.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Any
from urllib.parse import parse_qs

import orjson

from cairn.api import body_limits
from cairn.api.call import Call
from cairn.api.endpoints import Endpoints
from cairn.api.errors import AuthenticationFailed, InputError, InputTooLarge, MalformedPayload
from cairn.api.github.context import GithubContext
from cairn.domain.aggregate import acting_as
from cairn.domain.timestamps import utcnow

#: The actor of the events a delivery records: GitHub sent it.
WEBHOOK_ACTOR = "github-webhook"
SIGNATURE_HEADER = "x-hub-signature-256"
_SIGNATURE = re.compile(r"sha256=([0-9a-fA-F]{64})")
_DELIVERY_ID = re.compile(r"[a-zA-Z0-9]{8}-[a-zA-Z0-9]{4}-[a-zA-Z0-9]{4}-[a-zA-Z0-9]{4}-[a-zA-Z0-9]{12}")
_EVENT_NAME = re.compile(r"[a-z_]{1,64}")

endpoints = Endpoints()


def signature_of(secret: str, raw: bytes) -> str:
    """The ``X-Hub-Signature-256`` value GitHub sends for ``raw`` signed with ``secret``."""
    return "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


def verify_signature(secret: str, raw: bytes, header: str | None) -> None:
    """Raise ``AuthenticationFailed`` unless ``header`` signs ``raw`` with ``secret``."""
    if not secret:
        raise AuthenticationFailed(
            "This deployment has no GitHub webhook secret (CAIRN_GITHUB_WEBHOOK_SECRET), "
            "so it cannot verify deliveries and accepts none."
        )
    if not header:
        raise AuthenticationFailed("The delivery has no X-Hub-Signature-256 header.")
    found = _SIGNATURE.fullmatch(header.strip())
    if found is None:
        raise AuthenticationFailed("X-Hub-Signature-256 must be `sha256=` and 64 hexadecimal digits.")
    expected = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, found[1].lower()):
        raise AuthenticationFailed("X-Hub-Signature-256 does not match the body: is the webhook secret right?")


def _payload(call: Call[GithubContext]) -> dict[str, Any]:
    raw = call.raw
    if call.request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        fields = parse_qs(raw.decode("utf-8", "replace"), max_num_fields=10)
        if len(fields.get("payload", ())) != 1:
            raise MalformedPayload("A form-encoded delivery must have one `payload` field.")
        raw = fields["payload"][0].encode()
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise MalformedPayload(f"The delivery's body is not valid JSON: {e}") from None
    if not isinstance(body, dict):
        raise MalformedPayload("The delivery's body must be a JSON object.")
    if body_limits.nested_deeper_than(raw, body):
        raise MalformedPayload(f"The delivery's body nests deeper than {body_limits.MAX_DEPTH} levels.")
    if body_limits.list_longer_than(raw, body):
        raise InputTooLarge(f"A list in the delivery's body holds more than {body_limits.MAX_ITEMS} items.")
    if body_limits.holds_nul(raw, body):
        raise MalformedPayload("The delivery's body holds a NUL character (\\u0000), which Cairn refuses.")
    return body


@endpoints.endpoint(
    "githubWebHookConsumer", "POST", "/github", title="Consume GitHub WebHook", category="Github Service",
    own_authentication=True,
)
def github_webhook_consumer(call: Call[GithubContext]) -> None:
    """Receive a GitHub webhook delivery, signed with the App's webhook secret: it is recorded
    (once per ``X-GitHub-Delivery``) and acted on by Cairn's consumers."""
    headers = call.request.headers
    verify_signature(call.context.webhook_secret, call.raw, headers.get(SIGNATURE_HEADER))
    event_name = headers.get("x-github-event", "")
    if not _EVENT_NAME.fullmatch(event_name):
        raise InputError("The delivery has no valid X-GitHub-Event header.")
    delivery_id = headers.get("x-github-delivery", "")
    if not _DELIVERY_ID.fullmatch(delivery_id):
        raise InputError("The delivery has no valid X-GitHub-Delivery header (a GUID).")
    body = _payload(call)
    with acting_as(WEBHOOK_ACTOR):
        call.context.service.record_delivery(delivery_id, event_name, body, utcnow())
