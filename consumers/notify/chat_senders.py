"""Posting notifications to Slack and Matrix through their documented HTTP APIs (httpx).

Slack: the Web API's ``chat.postMessage`` (``POST {api_url}chat.postMessage``
with a bearer token); Slack answers 200 with ``{"ok": false, "error": ...}``
when it refuses, and 429 when it wants us to slow down.

Matrix: the client-server API's room send,
``PUT {base}/_matrix/client/v3/rooms/{roomId}/send/m.room.message/{txnId}``.
The transaction id is the notification's id, so a repeated attempt is the
same transaction, which the homeserver accepts once.

A refusal (Slack's ``ok: false``, a Matrix 4xx such as ``M_FORBIDDEN`` for
a room the user was not invited to) is permanent; no answer, a 5xx or a 429
is a failure for now.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from cairn.consumers.notify.delivery_failure import DeliveryFailed

TIMEOUT = 30.0
SLACK_TRANSIENT = frozenset({"ratelimited", "internal_error", "service_unavailable", "fatal_error", "request_timeout"})


def _retryable(status: int) -> bool:
    return status == 429 or status >= 500


async def _request(method: str, url: str, token: str, body: dict[str, Any], timeout: float) -> httpx.Response:
    try:
        async with httpx.AsyncClient(timeout=timeout) as client:
            return await client.request(method, url, json=body, headers={"Authorization": f"Bearer {token}"})
    except httpx.HTTPError as e:
        raise DeliveryFailed(f"{url} unavailable: {e!r}") from None


class SlackSender:
    def __init__(self, api_url: str, token: str, timeout: float = TIMEOUT):
        self.url = api_url.rstrip("/") + "/chat.postMessage"
        self.token = token
        self.timeout = timeout

    async def send(self, notification_id: str, slack: dict[str, Any]) -> None:
        body: dict[str, Any] = {
            "channel": slack["channelId"],
            "text": slack["text"],
            "unfurl_links": bool(slack.get("unfurlLinks")),
            "unfurl_media": bool(slack.get("unfurlMedia")),
        }
        for field in ("blocks", "attachments"):
            if slack.get(field):
                body[field] = slack[field]
        response = await _request("POST", self.url, self.token, body, self.timeout)
        if response.status_code != 200:
            raise DeliveryFailed(
                f"Slack answered HTTP {response.status_code}", permanent=not _retryable(response.status_code)
            )
        try:
            answer = response.json()
        except ValueError:
            raise DeliveryFailed("Slack answered something other than JSON") from None
        if not answer.get("ok"):
            error = str(answer.get("error", "unknown_error"))
            raise DeliveryFailed(f"Slack refused the message: {error}", permanent=error not in SLACK_TRANSIENT)


class MatrixSender:
    def __init__(self, base_url: str, access_token: str, user_id: str = "", timeout: float = TIMEOUT):
        self.base_url = base_url.rstrip("/")
        self.token = access_token
        self.user_id = user_id
        self.timeout = timeout

    def url(self, room_id: str, txn_id: str) -> str:
        room = quote(room_id, safe="")
        return f"{self.base_url}/_matrix/client/v3/rooms/{room}/send/m.room.message/{quote(txn_id, safe='')}"

    async def send(self, notification_id: str, matrix: dict[str, Any]) -> None:
        body: dict[str, Any] = {"msgtype": matrix.get("msgtype") or "m.notice", "body": matrix["body"]}
        if matrix.get("format"):
            body["format"] = matrix["format"]
        if matrix.get("formattedBody"):
            body["formatted_body"] = matrix["formattedBody"]
        response = await _request("PUT", self.url(matrix["roomId"], notification_id), self.token, body, self.timeout)
        if response.status_code == 200:
            return
        try:
            answer = response.json()
        except ValueError:
            answer = {}
        errcode = answer.get("errcode", "") if isinstance(answer, dict) else ""
        error = answer.get("error", "") if isinstance(answer, dict) else ""
        raise DeliveryFailed(
            f"Matrix answered HTTP {response.status_code} {errcode}: {error}".rstrip(": "),
            permanent=not _retryable(response.status_code),
        )
