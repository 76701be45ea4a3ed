"""The task group, task and task history pages, and the buttons that act on a task."""

from __future__ import annotations

from collections import Counter
from typing import Any
from urllib.parse import quote

import orjson
import yaml
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from cairn.api.queue.service import queue
from cairn.domain.queue.task import task_key
from cairn.projections.history import read_history, redact
from cairn.web.api_bridge import permitted, run_endpoint
from cairn.web.context import WebContext
from cairn.web.graph import layout, svg
from cairn.web.pages import RESOLVED, STATE_ORDER, not_found, render
from cairn.web.session import Visitor, csrf_ok

#: What a button may do, and in which states it is offered (the service decides in the end).
ACTIONS = {
    "rerun": ("rerunTask", RESOLVED),
    "cancel": ("cancelTask", ("unscheduled", "pending", "running")),
    "schedule": ("scheduleTask", ("unscheduled",)),
}
HISTORY_LIMIT = 5000


def group_page(ctx: WebContext, request: Request, who: Visitor) -> Response:
    group_id = request.path_params["taskGroupId"]
    run_endpoint(ctx.api, request, who.caller, queue, "getTaskGroup", {"taskGroupId": group_id})
    tasks = ctx.groups.task_briefs(group_id)
    counts = Counter(t["state"] for t in tasks)
    state = request.query_params.get("state", "")
    name = request.query_params.get("name", "").strip()
    shown = [
        t for t in tasks
        if (not state or t["state"] == state) and (not name or name.lower() in (t["name"] or "").lower())
    ]
    view = request.query_params.get("view", "list")
    edges = [(needed, t["task_id"]) for t in tasks for needed in t["dependencies"]]
    graph = svg(layout(tasks, edges)) if view == "graph" else None
    template = "group_body.html" if request.query_params.get("fragment") else "group.html"
    return render(
        ctx, request, who, template,
        group_id=group_id, tasks=shown, total=len(tasks), counts=counts, states=STATE_ORDER,
        resolved=sum(counts[s] for s in RESOLVED), state=state, name=name, view=view, graph=graph,
        query=request.url.query,
    )


def _scope_values(definition: dict[str, Any], task_id: str) -> dict[str, str]:
    return {
        "taskId": task_id,
        "schedulerId": definition["schedulerId"],
        "taskGroupId": definition["taskGroupId"],
        "projectId": definition["projectId"],
        "taskQueueId": definition["taskQueueId"],
    }


def task_page(ctx: WebContext, request: Request, who: Visitor) -> Response:
    task_id = request.path_params["taskId"]
    params = {"taskId": task_id}
    status = run_endpoint(ctx.api, request, who.caller, queue, "status", params)["status"]
    definition = run_endpoint(ctx.api, request, who.caller, queue, "task", params)
    runs = []
    for run in status["runs"]:
        run_params = {"taskId": task_id, "runId": str(run["runId"])}
        if permitted(who.caller, queue, "listArtifacts", **run_params):
            listed = run_endpoint(
                ctx.api, request, who.caller, queue, "listArtifacts", run_params, {"limit": "1000"}
            )
            artifacts = listed["artifacts"]
        else:
            artifacts = None
        runs.append({**run, "artifacts": artifacts})
    dependencies = definition.get("dependencies", [])
    dependents = ctx.queue_reads.dependents(task_id, "", 1000)
    related = ctx.queue_reads.task_rows([*dependencies, *dependents])
    values = _scope_values(definition, task_id)
    actions = [
        action for action, (endpoint, states) in ACTIONS.items()
        if status["state"] in states and who.signed_in and permitted(who.caller, queue, endpoint, **values)
    ]
    template = "task_body.html" if request.query_params.get("fragment") else "task.html"
    return render(
        ctx, request, who, template,
        task_id=task_id, definition=definition, status=status, runs=list(reversed(runs)),
        definition_yaml=yaml.safe_dump(definition, sort_keys=False, allow_unicode=True, width=100),
        dependencies=[_brief(related.get(t), t) for t in dependencies],
        dependents=[_brief(related.get(t), t) for t in dependents],
        actions=actions, quote=quote,
    )


def _brief(row: dict[str, Any] | None, task_id: str) -> dict[str, str]:
    if row is None:
        return {"task_id": task_id, "state": "unknown", "name": ""}
    name = orjson.loads(row["definition"]).get("metadata", {}).get("name", "")
    return {"task_id": task_id, "state": row["state"], "name": name}


def task_action(ctx: WebContext, request: Request, who: Visitor) -> Response:
    """A button's POST: checked against the session's token, then run as the API runs it."""
    task_id, action = request.path_params["taskId"], request.path_params["action"]
    if action not in ACTIONS:
        return not_found(ctx, request, who, f"No action {action}.")
    if not who.signed_in or not csrf_ok(who, request.state.form.get("csrf")):
        return render(
            ctx, request, who, "error.html", 403, title="Refused",
            message="This form did not come from your session: sign in and try again from the task's page.",
            sign_in=not who.signed_in,
        )
    run_endpoint(ctx.api, request, who.caller, queue, ACTIONS[action][0], {"taskId": task_id})
    return RedirectResponse(f"/tasks/{task_id}", status_code=303)


def history_page(ctx: WebContext, request: Request, who: Visitor) -> Response:
    task_id = request.path_params["taskId"]
    run_endpoint(ctx.api, request, who.caller, queue, "taskHistory", {"taskId": task_id}, {"limit": "1"})
    entries = read_history(ctx.log, task_key(task_id), 0, HISTORY_LIMIT)
    if not entries:
        return not_found(ctx, request, who, f"Task {task_id} was never recorded.")
    at_text = request.query_params.get("at", "")
    at = int(at_text) if at_text.isdigit() else entries[-1].version
    chosen = next((e for e in entries if e.version == at), entries[-1])
    # The task as it was right after the chosen event, folded from its events (as `cairn show --at`).
    task = ctx.log.repository.get(task_key(task_id), version=chosen.version)
    return render(
        ctx, request, who, "history.html",
        task_id=task_id, entries=entries, chosen=chosen, status=task.status(),
        definition_yaml=yaml.safe_dump(redact(task.public_definition()), sort_keys=False, allow_unicode=True, width=100),
        latest=entries[-1].version,
    )
