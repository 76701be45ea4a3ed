"""The notify service: e-mail, Pulse, Slack and Matrix notifications, and the denylist.

Each send records a requested Notification and answers at once; the
delivery sends it and records what happened (``cairn history notification
<id>``). An address on the denylist is refused with ``DenylistedAddress``,
as Taskcluster does, and a channel this deployment has not configured with
an ``InputError`` that names the setting to set.
"""

from __future__ import annotations

from typing import Any

import slugid

from cairn.api.call import Call
from cairn.api.endpoints import Service
from cairn.api.errors import DenylistedAddress, InputError
from cairn.api.notify.context import NotifyContext
from cairn.api.pagination import page

notify = Service(
    name="notify",
    title="Notification Service",
    description=(
        "The notification service sends e-mails, Slack and Matrix messages and Pulse messages, "
        "on request and when a task's `notify.*` routes ask for them."
    ),
)

#: What to set for each channel that needs configuring.
SETTINGS = {
    "email": "CAIRN_SMTP_URL",
    "slack-channel": "CAIRN_SLACK_TOKEN",
    "matrix-room": "CAIRN_MATRIX_BASE_URL and CAIRN_MATRIX_ACCESS_TOKEN",
}
NAMES = {"email": "Email", "pulse": "Pulse routing key pattern", "slack-channel": "Slack channel", "matrix-room": "Matrix room"}


def _ok() -> dict[str, Any]:
    # Taskcluster answers 200 with the text "OK" (and 204 when it dropped a
    # duplicate); Cairn's API documents 200 answers as JSON, so: 200 and {}.
    return {}


def _request(call: Call[NotifyContext], channel: str, address: str, content: dict[str, Any]) -> dict[str, Any]:
    ctx = call.context
    if ctx.notify.denied(channel, address):
        raise DenylistedAddress(f"{NAMES[channel]} {address} is denylisted")
    if channel not in ctx.configured:
        raise InputError(f"This deployment sends no {channel} notifications: {SETTINGS[channel]} is not set.")
    ctx.notify.request(slugid.nice(), channel, address, content, {"clientId": call.client_id})
    return _ok()


@notify.endpoint(
    "email", "POST", "/email", title="Send an Email", category="Notifications", stability="experimental",
    scopes="notify:email:<address>", input="email-request",
)
def email(call: Call[NotifyContext]) -> dict[str, Any]:
    """Send an e-mail to `address`: its Markdown `content` both as written and rendered to HTML, with an
    optional `link` shown as a button."""
    return _request(call, "email", call.body["address"], call.body)


@notify.endpoint(
    "pulse", "POST", "/pulse", title="Publish a Pulse Message", category="Notifications",
    stability="experimental", scopes="notify:pulse:<routingKey>", input="pulse-request",
)
def pulse(call: Call[NotifyContext]) -> dict[str, Any]:
    """Publish `message` on `exchange/taskcluster-notify/v1/notification` with routing key
    `primary.<routingKey>`, on AMQP and the event stream."""
    return _request(call, "pulse", call.body["routingKey"], call.body)


@notify.endpoint(
    "matrix", "POST", "/matrix", title="Post Matrix Message", category="Notifications",
    stability="experimental", scopes="notify:matrix-room:<roomId>", input="matrix-request",
)
def matrix(call: Call[NotifyContext]) -> dict[str, Any]:
    """Send a message to a Matrix room (`roomId` with its leading `!`); Cairn's Matrix user must have
    been invited to the room."""
    return _request(call, "matrix-room", call.body["roomId"], call.body)


@notify.endpoint(
    "slack", "POST", "/slack", title="Post Slack Message", category="Notifications",
    stability="experimental", scopes="notify:slack-channel:<channelId>", input="slack-request",
)
def slack(call: Call[NotifyContext]) -> dict[str, Any]:
    """Post a message to a Slack channel, by channel id; private channels need Cairn's app added first."""
    return _request(call, "slack-channel", call.body["channelId"], call.body)


@notify.endpoint(
    "addDenylistAddress", "POST", "/denylist/add", title="Denylist Given Address", category="Denylist",
    stability="experimental", scopes="notify:manage-denylist", input="notification-address",
)
def add_denylist_address(call: Call[NotifyContext]) -> dict[str, Any]:
    """Add an address to the denylist: nothing is sent to it any more, whatever asks."""
    call.context.notify.deny(call.body["notificationType"], call.body["notificationAddress"])
    return _ok()


@notify.endpoint(
    "deleteDenylistAddress", "DELETE", "/denylist/delete", title="Delete Denylisted Address",
    category="Denylist", stability="experimental", scopes="notify:manage-denylist", input="notification-address",
)
def delete_denylist_address(call: Call[NotifyContext]) -> dict[str, Any]:
    """Take an address off the denylist; an address that is not on it is no error."""
    call.context.notify.allow(call.body["notificationType"], call.body["notificationAddress"])
    return _ok()


@notify.endpoint(
    "listDenylist", "GET", "/denylist/list", title="List Denylisted Notifications", category="Denylist",
    stability="experimental", scopes="notify:manage-denylist", output="notification-address-list",
    query=("continuationToken", "limit"),
)
def list_denylist(call: Call[NotifyContext]) -> dict[str, Any]:
    """The denylisted addresses, up to 1000 at a time (fewer with `limit`); follow `continuationToken`
    until a page comes without one."""
    limit, after = page.bounds(call)
    notification_type, _, address = after.partition(" ")
    rows = call.context.reads.denylist((notification_type, address), limit + 1)
    body: dict[str, Any] = {"addresses": rows[:limit]}
    if len(rows) > limit:
        last = rows[limit - 1]
        body["continuationToken"] = page.token(f"{last['notificationType']} {last['notificationAddress']}")
    return body
