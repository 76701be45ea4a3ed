"""``/log``: the deployment's recent events, newest first, filtered by entity and by who caused them.

Each event is shown only to a visitor who could read that entity's
history through the API (a task's with ``taskHistory``'s scopes, a
client's with ``clientHistory``'s, ...); entities with no history endpoint
are shown to visitors who may read everything.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from cairn.api.auth.handlers import auth
from cairn.api.queue.service import queue
from cairn.consumers.log_follower import read_events
from cairn.domain.auth.scopes import satisfies
from cairn.projections.history import event_type
from cairn.web.api_bridge import permitted
from cairn.web.context import WebContext
from cairn.web.pages import render
from cairn.web.session import Visitor

WINDOW = 2000
SHOWN = 200


@dataclass(frozen=True)
class LoggedEntry:
    position: int
    type: str
    entity: str
    link: str | None
    actor: str
    time: datetime


def _readable(who: Visitor, kind: str, entity_id: str) -> bool:
    if kind == "task":
        return permitted(who.caller, queue, "taskHistory", taskId=entity_id)
    if kind == "task-group":
        return permitted(who.caller, queue, "taskGroupHistory", taskGroupId=entity_id)
    if kind == "client":
        return permitted(who.caller, auth, "clientHistory", clientId=entity_id)
    if kind == "role":
        return permitted(who.caller, auth, "roleHistory", roleId=entity_id)
    return satisfies(who.caller.scopes, "*")


def _link(kind: str, entity_id: str) -> str | None:
    return {"task": f"/tasks/{entity_id}/history", "task-group": f"/tasks/groups/{entity_id}"}.get(kind)


def recent_events(ctx: WebContext, who: Visitor, entity: str, actor: str) -> tuple[list[LoggedEntry], int]:
    head = ctx.log.recorder.max_notification_id() or 0
    logged = read_events(ctx.log, max(0, head - WINDOW), WINDOW)
    found = []
    for item in reversed(logged):
        event: Any = item.event
        key = str(event.originator_id)
        kind, _, entity_id = key.partition("/")
        who_did = getattr(event, "actor", "") or "unknown"
        if entity and entity.lower() not in key.lower():
            continue
        if actor and actor.lower() not in who_did.lower():
            continue
        if not _readable(who, kind, entity_id):
            continue
        link = _link(kind, entity_id)
        found.append(LoggedEntry(item.position, event_type(event), key, link, who_did, event.timestamp))
        if len(found) >= SHOWN:
            break
    return found, head


def event_log_page(ctx: WebContext, request: Request, who: Visitor) -> Response:
    entity = request.query_params.get("entity", "").strip()
    actor = request.query_params.get("who", "").strip()
    entries, head = recent_events(ctx, who, entity, actor)
    template = "event_log_body.html" if request.query_params.get("fragment") else "event_log.html"
    return render(ctx, request, who, template, entries=entries, head=head, entity=entity, actor=actor,
                  window=WINDOW, shown=SHOWN)
