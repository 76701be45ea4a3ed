"""The hooks service through the official client: definitions, triggers, tokens, role scopes and messages."""

from __future__ import annotations

import pytest
import taskcluster
from taskcluster.exceptions import TaskclusterAuthFailure, TaskclusterRestFailure

from cairn.consumers.event_stream import derive
from cairn.consumers.log_follower import AggregateFolder, read_events
from tests.acceptance.hooks_helpers import QUEUE_SCOPES, hook_definition, hook_task, raw_event_rows, role_for_hook


def messages(runtime, exchange_prefix: str) -> list:
    items = derive(AggregateFolder(runtime.log), read_events(runtime.log, 0, 10_000))
    return [i.message for i in items if i.message.exchange.startswith(exchange_prefix)]


def fires(hooks, group: str, hook_id: str) -> list[dict]:
    try:
        return hooks.listLastFires(group, hook_id)["lastFires"]
    except TaskclusterRestFailure as e:
        if e.status_code == 404:
            return []
        raise


def test_a_hook_is_created_listed_updated_and_removed_with_its_messages(server):
    hooks = server.client("hooks")
    created = hooks.createHook("ci", "nightly/build", hook_definition(schedule=["0 0 3 * * *"]))
    assert created["hookGroupId"] == "ci" and created["hookId"] == "nightly/build"
    assert created["metadata"]["emailOnError"] is True
    assert created["triggerSchema"] == {"type": "object", "additionalProperties": False}
    assert created["bindings"] == [] and created["schedule"] == ["0 0 3 * * *"]
    # The same definition again is no change; another one is a conflict.
    assert hooks.createHook("ci", "nightly/build", hook_definition(schedule=["0 0 3 * * *"])) == created
    with pytest.raises(TaskclusterRestFailure) as conflict:
        hooks.createHook("ci", "nightly/build", hook_definition())
    assert conflict.value.status_code == 409

    assert hooks.hook("ci", "nightly/build") == created
    assert hooks.listHookGroups() == {"groups": ["ci"]}
    assert [h["hookId"] for h in hooks.listHooks("ci")["hooks"]] == ["nightly/build"]
    status = hooks.getHookStatus("ci", "nightly/build")
    assert status["lastFire"] == {"result": "no-fire"}
    assert status["nextScheduledDate"].endswith("T03:00:00.000Z")

    updated = hooks.updateHook("ci", "nightly/build", hook_definition(task=hook_task(priority="low")))
    assert updated["task"]["priority"] == "low" and updated["schedule"] == []
    assert "nextScheduledDate" not in hooks.getHookStatus("ci", "nightly/build")
    hooks.removeHook("ci", "nightly/build")
    with pytest.raises(TaskclusterRestFailure) as gone:
        hooks.hook("ci", "nightly/build")
    assert gone.value.status_code == 404
    assert hooks.listHookGroups() == {"groups": []}

    sent = [(m.exchange.rsplit("/", 1)[1], m.routing_key, m.body) for m in messages(server.runtime, "exchange/taskcluster-hooks/")]
    body = {"hookGroupId": "ci", "hookId": "nightly/build"}
    assert sent == [("hook-created", "_", body), ("hook-updated", "_", body), ("hook-deleted", "_", body)]


def test_a_bad_schedule_or_trigger_schema_is_refused(server):
    hooks = server.client("hooks")
    for bad in ({"schedule": ["every day"]}, {"triggerSchema": {"type": "no-such-type"}}):
        with pytest.raises(TaskclusterRestFailure) as refused:
            hooks.createHook("ci", "bad", hook_definition(**bad))
        assert refused.value.status_code == 400
    assert hooks.listHookGroups() == {"groups": []}


def test_trigger_renders_the_template_and_the_task_carries_the_payload(server):
    hooks, queue = server.client("hooks"), server.client("queue")
    role_for_hook(server, "ci", "on-demand", QUEUE_SCOPES)
    template = hook_task(
        payload={"command": ["echo", "${payload.branch}"], "env": {"FIRED_BY": "${firedBy}", "TASK": "${taskId}"}},
        deadline={"$fromNow": "2 hours"},
    )
    schema = {"type": "object", "properties": {"branch": {"type": "string"}}, "required": ["branch"],
              "additionalProperties": False}
    hooks.createHook("ci", "on-demand", hook_definition(task=template, triggerSchema=schema))

    answer = hooks.triggerHook("ci", "on-demand", {"branch": "main"})
    task_id = answer["taskId"]
    assert answer["status"] == {"taskId": task_id}
    task = queue.task(task_id)
    assert task["payload"]["command"] == ["echo", "main"]
    assert task["payload"]["env"] == {"FIRED_BY": "triggerHook", "TASK": task_id}
    assert task["taskGroupId"] == task_id

    [fire] = hooks.listLastFires("ci", "on-demand")["lastFires"]
    assert (fire["firedBy"], fire["taskId"], fire["result"], fire["error"]) == ("triggerHook", task_id, "success", "")
    assert fire["taskState"] == "pending"
    assert hooks.getHookStatus("ci", "on-demand")["lastFire"]["taskId"] == task_id

    # A payload the triggerSchema refuses is a 400, and fires nothing.
    with pytest.raises(TaskclusterRestFailure) as refused:
        hooks.triggerHook("ci", "on-demand", {"branch": 7})
    assert refused.value.status_code == 400
    assert len(fires(hooks, "ci", "on-demand")) == 1


def test_trigger_with_token_works_until_the_token_is_reset(server):
    hooks = server.client("hooks")
    role_for_hook(server, "ci", "webhook", QUEUE_SCOPES)
    hooks.createHook("ci", "webhook", hook_definition(triggerSchema={"type": "object"}))
    token = hooks.getTriggerToken("ci", "webhook")["token"]
    anonymous = server.anonymous("hooks")
    assert anonymous.triggerHookWithToken("ci", "webhook", token, {"x": 1})["taskId"]

    new_token = hooks.resetTriggerToken("ci", "webhook")["token"]
    assert new_token != token and hooks.getTriggerToken("ci", "webhook")["token"] == new_token
    with pytest.raises(TaskclusterAuthFailure) as refused:
        anonymous.triggerHookWithToken("ci", "webhook", token, {"x": 2})
    assert refused.value.status_code == 401
    assert anonymous.triggerHookWithToken("ci", "webhook", new_token, {"x": 3})["taskId"]
    assert [f["firedBy"] for f in fires(hooks, "ci", "webhook")] == ["triggerHookWithToken"] * 2

    # Neither token is in any stored event, nor in any message.
    rows = raw_event_rows(server.runtime)
    assert not any(token.encode() in row or new_token.encode() in row for row in rows)
    bodies = repr([m.body for m in messages(server.runtime, "exchange/")])
    assert token not in bodies and new_token not in bodies


def test_a_task_needing_scopes_the_role_lacks_is_a_failed_fire_with_its_reason(server):
    hooks, queue = server.client("hooks"), server.client("queue")
    role_for_hook(server, "ci", "greedy", QUEUE_SCOPES)
    hooks.createHook("ci", "greedy", hook_definition(task=hook_task(scopes=["secrets:get:production/*"])))
    with pytest.raises(TaskclusterRestFailure) as refused:
        hooks.triggerHook("ci", "greedy", {})
    assert refused.value.status_code == 403
    [fire] = hooks.listLastFires("ci", "greedy")["lastFires"]
    assert fire["result"] == "error" and "secrets:get:production/*" in fire["error"]
    assert fire["taskState"] == "unknown"
    with pytest.raises(TaskclusterRestFailure) as missing:
        queue.task(fire["taskId"])
    assert missing.value.status_code == 404
    status = hooks.getHookStatus("ci", "greedy")["lastFire"]
    assert status["result"] == "error" and "hook-id:ci/greedy" in status["error"]["message"]


def test_creating_a_hook_needs_its_role(server):
    expires = taskcluster.stringDate(taskcluster.fromNow("1 hour"))
    token = server.client("auth").createClient(
        "test/hooker", {"description": "", "expires": expires, "scopes": ["hooks:modify-hook:ci/*"]}
    )["accessToken"]
    hooker = server.client("hooks", client_id="test/hooker", access_token=token)
    with pytest.raises(TaskclusterRestFailure) as refused:
        hooker.createHook("ci", "mine", hook_definition())
    assert refused.value.status_code == 403
    assert "assume:hook-id:ci/mine" in str(refused.value)
