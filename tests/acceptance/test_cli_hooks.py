"""``cairn hook`` and ``cairn secret`` against a live server, and their history: never a value or a token."""

from __future__ import annotations

import json
import logging

import yaml

from tests.acceptance.hooks_helpers import QUEUE_SCOPES, hook_definition, raw_event_rows, role_for_hook
from tests.acceptance.test_cli import cli, server  # noqa: F401  (fixtures)

VALUE = "cli-secret-value-4a9d0c"


def server_log(caplog) -> str:
    """What Cairn itself logged (the official client logs its own requests at DEBUG)."""
    return "\n".join(r.getMessage() for r in caplog.records if r.name.startswith(("cairn", "uvicorn")))


def test_secrets_from_the_command_line_show_their_value_only_when_asked(cli, server, caplog):
    caplog.set_level(logging.DEBUG)
    cli.run("secret", "set", "deploy/key", "--expires", "1 day", input=json.dumps({"key": VALUE}))
    assert cli.json("secret", "list") == {"secrets": ["deploy/key"]}
    hidden = cli.run("secret", "get", "deploy/key").stdout
    assert VALUE not in hidden and "--reveal" in hidden
    assert VALUE not in cli.run("secret", "get", "deploy/key", "--json").stdout
    assert cli.json("secret", "get", "deploy/key", "--reveal")["secret"] == {"key": VALUE}
    cli.run("secret", "remove", "deploy/key")
    assert cli.json("secret", "list") == {"secrets": []}

    events = cli.json("history", "secret", "deploy/key")["events"]
    assert [(e["type"], e["clientId"]) for e in events] == [
        ("SecretCreated", "static/root"), ("SecretRemoved", "static/root")]
    assert events[0]["data"] == {"name": "deploy/key", "expires": events[0]["data"]["expires"]}
    table = cli.run("history", "secret", "deploy/key", "--full").stdout
    assert "SecretCreated" in table
    for shown in (table, json.dumps(events), server_log(caplog)):
        assert VALUE not in shown
    assert not any(VALUE.encode() in row for row in raw_event_rows(server.runtime))


def test_hooks_from_the_command_line(cli, server, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    role_for_hook(server, "ci", "manual", QUEUE_SCOPES)
    path = tmp_path / "hook.yml"
    path.write_text(yaml.safe_dump(hook_definition(triggerSchema={"type": "object"})))
    assert cli.json("hook", "create", "ci/manual", str(path))["hookId"] == "manual"
    assert [h["hookId"] for h in cli.json("hook", "list")["hooks"]] == ["manual"]
    assert "test hook" in cli.run("hook", "show", "ci/manual").stdout
    task_id = cli.run("hook", "trigger", "ci/manual", "--payload", '{"why": "because"}').stdout.strip()
    assert server.client("queue").task(task_id)["taskGroupId"] == task_id
    [fire] = cli.json("hook", "fires", "ci/manual")["lastFires"]
    assert (fire["taskId"], fire["firedBy"]) == (task_id, "triggerHook")
    assert task_id in cli.run("hook", "fires", "ci/manual").stdout
    path.write_text(yaml.safe_dump(hook_definition(schedule=["0 0 0 1 1 *"])))
    assert cli.json("hook", "update", "ci/manual", str(path))["schedule"] == ["0 0 0 1 1 *"]
    token = server.client("hooks").resetTriggerToken("ci", "manual")["token"]
    cli.run("hook", "remove", "ci/manual")
    assert cli.json("hook", "list") == {"hooks": []}

    events = cli.json("history", "hook", "ci/manual")["events"]
    assert [e["type"] for e in events] == [
        "HookCreated", "HookFired", "HookDefinitionChanged", "HookTriggerTokenReset", "HookRemoved"]
    assert events[1]["data"]["task_id"] == task_id and events[1]["data"]["fired_by"] == "triggerHook"
    shown = cli.run("history", "hook", "ci/manual", "--full").stdout + json.dumps(events) + server_log(caplog)
    assert token not in shown and "sealed" not in shown
