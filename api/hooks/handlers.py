"""The hooks service: tasks created on a schedule, on a trigger, or on a Pulse message.

A hook's task is a JSON-e template; each fire renders it and creates the
task with the scopes of the role ``hook-id:<hookGroupId>/<hookId>``, and is
recorded as an event whether the queue accepted the task or not. Definitions,
trigger tokens (sealed) and fires all live in the log; the hooks views serve
the listings, the schedule and the last fires.
"""

from __future__ import annotations

from typing import Any

from cairn.api.call import Call
from cairn.api.endpoints import Service
from cairn.api.errors import AuthenticationFailed, InputError, InsufficientScopes, ResourceNotFound
from cairn.api.hooks.context import HooksContext
from cairn.api.pagination import page
from cairn.domain.hooks.firing import FireOutcome, TaskRefused
from cairn.domain.hooks.model import Hook
from cairn.domain.timestamps import utcnow

hooks = Service(
    name="hooks",
    title="Hooks Service",
    description=(
        "The hooks service creates tasks in response to events: on a cron schedule, when "
        "triggered through the API or with a secret token, and on Pulse messages that match "
        "its bindings. Every change to a hook and every fire is an event in Cairn's log."
    ),
)

IDS: dict[str, Any] = {
    "params": {"hookGroupId": r"[a-zA-Z0-9-_]{1,1000}", "hookId": r"[a-zA-Z0-9-_/]{1,1000}"},
    "greedy": ("hookId",),
}
MODIFY = {"AllOf": ["hooks:modify-hook:<hookGroupId>/<hookId>", "assume:hook-id:<hookGroupId>/<hookId>"]}


def definition_json(hook_group_id: str, hook_id: str, definition: dict[str, Any]) -> dict[str, Any]:
    return {"hookGroupId": hook_group_id, "hookId": hook_id, **definition}


def _ids(call: Call[HooksContext]) -> tuple[str, str]:
    return call.params["hookGroupId"], call.params["hookId"]


def _body(call: Call[HooksContext]) -> dict[str, Any]:
    group, hook = _ids(call)
    body = dict(call.body)
    if body.pop("hookGroupId", group) != group:
        raise InputError("Hook Group Ids do not match")
    if body.pop("hookId", hook) != hook:
        raise InputError("Hook Ids do not match")
    return body


@hooks.endpoint(
    "listHookGroups", "GET", "/hooks", title="List hook groups", category="Hooks",
    scopes="hooks:list-hooks:", output="list-hook-groups-response",
)
def list_hook_groups(call: Call[HooksContext]) -> dict[str, Any]:
    """Every hook group with at least one hook."""
    return {"groups": call.context.reads.groups()}


@hooks.endpoint(
    "listHooks", "GET", "/hooks/<hookGroupId>", title="List hooks in a given group", category="Hooks",
    scopes="hooks:list-hooks:<hookGroupId>", output="list-hooks-response",
    params={"hookGroupId": IDS["params"]["hookGroupId"]},
)
def list_hooks(call: Call[HooksContext]) -> dict[str, Any]:
    """The definitions of every hook in a group; 404 for a group with none."""
    rows = call.context.reads.hooks_in_group(call.params["hookGroupId"])
    if not rows:
        raise ResourceNotFound("No such group")
    return {"hooks": [definition_json(r["hook_group_id"], r["hook_id"], r["definition"]) for r in rows]}


@hooks.endpoint(
    "getHookStatus", "GET", "/hooks/<hookGroupId>/<hookId>/status", title="Get hook status",
    category="Hook Status", scopes="hooks:status:<hookGroupId>/<hookId>", output="hook-status",
    stability="deprecated", **IDS,
)
def get_hook_status(call: Call[HooksContext]) -> dict[str, Any]:
    """The hook's last fire and, if it has a schedule, its next scheduled date."""
    context = call.context
    group, hook_id = _ids(call)
    row = context.reads.hook(group, hook_id)
    if row is None:
        raise ResourceNotFound("No such hook")
    fires = context.reads.fires(group, hook_id, 0, 1)
    last: dict[str, Any] = {"result": "no-fire"}
    if fires:
        fire = fires[0]
        if fire["result"] == "success":
            last = {"result": "success", "taskId": fire["task_id"], "time": fire["task_create_time"]}
        else:
            last = {"result": "error", "error": {"message": fire["error"]}, "time": fire["task_create_time"]}
    status: dict[str, Any] = {"lastFire": last}
    if row["definition"]["schedule"] and row["next_scheduled_date"]:
        status["nextScheduledDate"] = row["next_scheduled_date"]
    return status


@hooks.endpoint(
    "listLastFires", "GET", "/hooks/<hookGroupId>/<hookId>/last-fires",
    title="Get information about recent hook fires", category="Hook Status",
    scopes="hooks:list-last-fires:<hookGroupId>/<hookId>", output="list-lastFires-response",
    query=("continuationToken", "limit"), **IDS,
)
def list_last_fires(call: Call[HooksContext]) -> dict[str, Any]:
    """The hook's fires, newest first, with the current state of each task."""
    context = call.context
    group, hook_id = _ids(call)
    limit, after = page.bounds(call)
    if after and not after.isdigit():
        raise InputError("continuationToken is not valid")
    rows = context.reads.fires(group, hook_id, int(after or 0), limit + 1)
    if not rows:
        raise ResourceNotFound("No such hook or never fired")
    more = {"continuationToken": page.token(str(rows[limit - 1]["version"]))} if len(rows) > limit else {}
    rows = rows[:limit]
    states = context.task_states([r["task_id"] for r in rows])
    return {
        "lastFires": [
            {
                "hookGroupId": r["hook_group_id"],
                "hookId": r["hook_id"],
                "firedBy": r["fired_by"],
                "taskId": r["task_id"],
                "taskCreateTime": r["task_create_time"],
                "result": r["result"],
                "error": r["error"],
                "taskState": states.get(r["task_id"], "unknown"),
            }
            for r in rows
        ],
        **more,
    }


@hooks.endpoint(
    "getTriggerToken", "GET", "/hooks/<hookGroupId>/<hookId>/token", title="Get a trigger token",
    category="Hooks", scopes="hooks:get-trigger-token:<hookGroupId>/<hookId>",
    output="trigger-token-response", **IDS,
)
def get_trigger_token(call: Call[HooksContext]) -> dict[str, Any]:
    """The secret token that triggers this hook through triggerHookWithToken."""
    return {"token": call.context.hooks.trigger_token(*_ids(call))}


@hooks.endpoint(
    "resetTriggerToken", "POST", "/hooks/<hookGroupId>/<hookId>/token", title="Reset a trigger token",
    category="Hooks", scopes="hooks:reset-trigger-token:<hookGroupId>/<hookId>",
    output="trigger-token-response", **IDS,
)
def reset_trigger_token(call: Call[HooksContext]) -> dict[str, Any]:
    """Replace the trigger token: the old one no longer triggers the hook."""
    return {"token": call.context.hooks.reset_trigger_token(*_ids(call))}


def _fired(hook: Hook, outcome: FireOutcome) -> dict[str, Any]:
    if outcome.task_id is None:
        return {}
    refusal = outcome.refusal
    if refusal is None:
        return {"taskId": outcome.task_id, "status": {"taskId": outcome.task_id}}
    if isinstance(refusal, TaskRefused) and refusal.code == "InsufficientScopes":
        raise InsufficientScopes(refusal.message)
    raise InputError(f"While firing hook {hook.hook_group_id}/{hook.hook_id}:\n\n{refusal.message}")


@hooks.endpoint(
    "triggerHookWithToken", "POST", "/hooks/<hookGroupId>/<hookId>/trigger/<token>",
    title="Trigger a hook with a token", category="Hooks", input="trigger-hook",
    output="trigger-hook-response", **IDS,
)
def trigger_hook_with_token(call: Call[HooksContext]) -> dict[str, Any]:
    """Fire the hook for a caller holding its token; the payload must match its triggerSchema."""
    context = call.context
    hook = context.hooks.live(*_ids(call))
    if not context.hooks.token_matches(hook, call.params["token"]):
        raise AuthenticationFailed("invalid hook token")
    return _fired(hook, context.firing.trigger(hook, call.body, "triggerHookWithToken", utcnow()))


@hooks.endpoint(
    "triggerHook", "POST", "/hooks/<hookGroupId>/<hookId>/trigger", title="Trigger a hook",
    category="Hooks", scopes="hooks:trigger-hook:<hookGroupId>/<hookId>", input="trigger-hook",
    output="trigger-hook-response", **IDS,
)
def trigger_hook(call: Call[HooksContext]) -> dict[str, Any]:
    """Fire the hook; the payload must match its triggerSchema, and is the JSON-e context's ``payload``."""
    context = call.context
    hook = context.hooks.live(*_ids(call))
    return _fired(hook, context.firing.trigger(hook, call.body, "triggerHook", utcnow(), call.client_id))


@hooks.endpoint(
    "hook", "GET", "/hooks/<hookGroupId>/<hookId>", title="Get hook definition", category="Hooks",
    scopes="hooks:get:<hookGroupId>:<hookId>", output="hook-definition", **IDS,
)
def get_hook(call: Call[HooksContext]) -> dict[str, Any]:
    """The hook's definition."""
    group, hook_id = _ids(call)
    row = call.context.reads.hook(group, hook_id)
    if row is None:
        raise ResourceNotFound("No such hook")
    return definition_json(group, hook_id, row["definition"])


@hooks.endpoint(
    "createHook", "PUT", "/hooks/<hookGroupId>/<hookId>", title="Create a hook", category="Hooks",
    scopes=MODIFY, input="create-hook-request", output="hook-definition", **IDS,
)
def create_hook(call: Call[HooksContext]) -> dict[str, Any]:
    """Create a hook. The caller must be able to assume its role, ``hook-id:<hookGroupId>/<hookId>``."""
    group, hook_id = _ids(call)
    definition = call.context.hooks.create(group, hook_id, _body(call), utcnow())
    return definition_json(group, hook_id, definition)


@hooks.endpoint(
    "updateHook", "POST", "/hooks/<hookGroupId>/<hookId>", title="Update a hook", category="Hooks",
    scopes=MODIFY, input="create-hook-request", output="hook-definition", **IDS,
)
def update_hook(call: Call[HooksContext]) -> dict[str, Any]:
    """Change every part of a hook but its ids; bindings left out stay as they were."""
    group, hook_id = _ids(call)
    definition = call.context.hooks.update(group, hook_id, _body(call), utcnow())
    return definition_json(group, hook_id, definition)


@hooks.endpoint(
    "removeHook", "DELETE", "/hooks/<hookGroupId>/<hookId>", title="Delete a hook", category="Hooks",
    scopes="hooks:modify-hook:<hookGroupId>/<hookId>", **IDS,
)
def remove_hook(call: Call[HooksContext]) -> None:
    """Remove the hook and its record of fires; its history stays in the log."""
    call.context.hooks.remove(*_ids(call))
    return None
