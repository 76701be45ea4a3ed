"""What a task's ``notify.*`` routes ask for when the task changes state, as Taskcluster reads them.

A route is ``notify.<kind>.<address>.on-<event>``: the kind is ``email``,
``pulse``, ``slack-channel`` or ``matrix-room``; the address may hold dots
(an e-mail address, a routing key); the event is ``defined``, ``pending``,
``running``, ``completed``, ``failed``, ``exception``, ``resolved`` (any of
the last three), ``transition`` (any change) or the older ``any`` (same as
``resolved``). A task resolved as exception because it was cancelled or
ran past its deadline notifies nobody: those are deliberate, or already
someone else's alarm.

The content is Taskcluster's by default, and each part can be replaced
through the task's ``extra.notify`` with a JSON-e template rendered in the
context ``{task, status, taskId, rootUrl}``; a template that does not
render gives a message saying why, rather than no message. Cairn adds to a
failed or exception task's e-mail the last lines of the run's log.

Everything here is a pure function of the task, its status and the route.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jsone

from cairn.domain.notify.model import route_notification_id

PREFIX = "notify"
KINDS = ("email", "pulse", "slack-channel", "matrix-room")
RESOLVED = frozenset({"completed", "failed", "exception"})
IGNORED_REASONS = frozenset({"canceled", "deadline-exceeded"})
LOG_LINES = 1000
SLACK_EMOJI = {
    "pending": ":hourglass:",
    "running": ":hammer_and_wrench:",
    "completed": ":heavy_check_mark:",
    "failed": ":x:",
    "exception": ":heavy_exclamation_mark:",
}

#: (taskId, runId) → the last lines of that run's log, or None when it has none.
LogTail = Callable[[str, int], "str | None"]


@dataclass(frozen=True)
class RouteNotification:
    notification_id: str
    channel: str
    address: str
    content: dict[str, Any]
    source: dict[str, Any]


@dataclass(frozen=True)
class NotifyRoute:
    route: str
    kind: str
    address: str
    decider: str


def parse_route(route: str) -> NotifyRoute | None:
    words = route.split(".")
    if len(words) < 4 or words[0] != PREFIX or words[1] not in KINDS or not words[-1].startswith("on-"):
        return None
    return NotifyRoute(route, words[1], ".".join(words[2:-1]), words[-1][3:])


def decides_for(decider: str, state: str) -> bool:
    if decider == "transition":
        return True
    if decider in ("any", "resolved"):
        return state in RESOLVED
    if decider == "defined":
        return state == "unscheduled"
    return decider == state


def ui_url(root_url: str, path: str) -> str:
    return f"{root_url.rstrip('/')}/{path}"


def render(template: Any, context: dict[str, Any]) -> Any:
    """A JSON-e template rendered; what went wrong, as the message, when it does not render."""
    try:
        return jsone.render(template, context)
    except jsone.JSONTemplateError as e:
        return f"Error parsing custom message: {e}"


def notifications_for(
    event_id: str,
    event_version: int,
    run_id: int | None,
    definition: dict[str, Any],
    status: dict[str, Any],
    root_url: str,
    log_tail: LogTail,
) -> list[RouteNotification]:
    """The notifications the task's routes ask for, given its status right after one of its events."""
    state = status["state"]
    runs = status["runs"]
    if state == "exception" and runs and runs[-1].get("reasonResolved") in IGNORED_REASONS:
        return []
    chosen = [r for r in map(parse_route, definition.get("routes", ())) if r and decides_for(r.decider, state)]
    if not chosen:
        return []
    task_id = status["taskId"]
    context = {"task": definition, "status": status, "taskId": task_id, "rootUrl": root_url}
    extra = definition.get("extra") or {}
    options = extra.get("notify") if isinstance(extra, dict) else None
    options = options if isinstance(options, dict) else {}
    builders = {"email": _email, "pulse": _pulse, "slack-channel": _slack, "matrix-room": _matrix}
    found = []
    for route in dict.fromkeys(chosen):
        content = builders[route.kind](route.address, context, options, run_id, log_tail)
        source = {"taskId": task_id, "runId": run_id, "state": state, "route": route.route}
        notification_id = route_notification_id(event_id, event_version, route.route)
        found.append(RouteNotification(notification_id, route.kind, route.address, content, source))
    return found


def _email(address: str, ctx: dict[str, Any], options: dict[str, Any], run_id: int | None, log_tail: LogTail) -> dict:
    task, status, task_id = ctx["task"], ctx["status"], ctx["taskId"]
    metadata = task.get("metadata", {})
    href = ui_url(ctx["rootUrl"], f"tasks/{task_id}")
    group_href = ui_url(ctx["rootUrl"], f"tasks/groups/{task['taskGroupId']}")
    runs = len(status["runs"])
    content = "\n".join(
        [
            f"Task [`{task_id}`]({href}) in task-group [`{task['taskGroupId']}`]({group_href}) is complete.",
            "",
            f"**Status:** {status['state']} (in {runs} run{'' if runs == 1 else 's'})  ",
            f"**Name:** {metadata.get('name', '')}  ",
            f"**Description:** {metadata.get('description', '')}  ",
            f"**Owner:** {metadata.get('owner', '')}  ",
            f"**Source:** {metadata.get('source', '')}",
        ]
    )
    link: Any = {"text": "Inspect Task", "href": href}
    subject = f"Task {status['state']}: {metadata.get('name', '')} - {task_id}"
    template = "simple"
    custom = options.get("email")
    if isinstance(custom, dict):
        content = render(custom["content"], ctx) if custom.get("content") else content
        subject = render(custom["subject"], ctx) if custom.get("subject") else subject
        if custom.get("link"):
            rendered = render(custom["link"], ctx)
            link = rendered if isinstance(rendered, dict) else None
        if custom.get("template"):
            template = render(custom["template"], ctx)
    email = {"address": address, "subject": str(subject), "content": str(content), "template": template}
    if link:
        email["link"] = link
    if status["state"] in ("failed", "exception") and run_id is not None:
        tail = log_tail(task_id, run_id)
        if tail:
            email["content"] += "\n\n" + log_section(tail)
    return email


def log_section(tail: str) -> str:
    """The log's last lines as a Markdown code block, fenced longer than any backtick run inside."""
    fence = "```"
    while fence in tail:
        fence += "`"
    return f"**The last {LOG_LINES} lines of the log (`public/logs/live.log`):**\n\n{fence}text\n{tail}\n{fence}"


def _pulse(address: str, ctx: dict[str, Any], options: dict[str, Any], run_id: int | None, log_tail: LogTail) -> dict:
    return {"routingKey": address, "message": ctx["status"]}


def _slack(address: str, ctx: dict[str, Any], options: dict[str, Any], run_id: int | None, log_tail: LogTail) -> dict:
    task, status = ctx["task"], ctx["status"]
    href = ui_url(ctx["rootUrl"], f"tasks/{ctx['taskId']}")
    group_href = ui_url(ctx["rootUrl"], f"tasks/groups/{task['taskGroupId']}")
    emoji = SLACK_EMOJI.get(status["state"], ":question:")
    name = task.get("metadata", {}).get("name", "")
    text = f"{emoji} *<{href}|{name}>* transitioned to _{status['state']}_"
    if "slackText" in options:
        text = render(options["slackText"], ctx)
    blocks: Any = [
        {"type": "section", "text": {"type": "mrkdwn", "text": text}},
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": f"Part of task group *<{group_href}|{task['taskGroupId']}>*"}],
        },
    ]
    if "slackBlocks" in options:
        blocks = render(options["slackBlocks"], ctx)
    attachments = render(options["slackAttachments"], ctx) if "slackAttachments" in options else []
    return {
        "channelId": address,
        "text": text,
        "blocks": blocks,
        "attachments": attachments,
        "unfurlLinks": options.get("slackUnfurlLinks") is True,
        "unfurlMedia": options.get("slackUnfurlMedia") is True,
    }


def _matrix(address: str, ctx: dict[str, Any], options: dict[str, Any], run_id: int | None, log_tail: LogTail) -> dict:
    href = ui_url(ctx["rootUrl"], f"tasks/{ctx['taskId']}")
    name = ctx["task"].get("metadata", {}).get("name", "")
    body = f"'{name}' resolved as '{ctx['status']['state']}': {href}"
    if "matrixBody" in options:
        body = render(options["matrixBody"], ctx)
    message = {"roomId": address, "body": body, "msgtype": options.get("matrixMsgtype") or "m.notice"}
    if "matrixFormat" in options:
        message["format"] = options["matrixFormat"]
    if "matrixFormattedBody" in options:
        message["formattedBody"] = render(options["matrixFormattedBody"], ctx)
    return message
