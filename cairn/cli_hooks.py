"""``cairn hook ...``: hooks through the hooks service, with the TASKCLUSTER_* credentials.

A hook is named ``<hookGroupId>/<hookId>`` (the hook id may itself hold
slashes). A definition file is YAML or JSON, as createHook takes it.
"""

from __future__ import annotations

from typing import Any

import click
import yaml

from cairn.cli_output import CairnGroup, api, json_option, paged, print_fields, print_json, print_table


def _ids(name: str) -> tuple[str, str]:
    group, _, hook_id = name.partition("/")
    if not group or not hook_id:
        raise click.BadParameter(f"{name!r} is not <hookGroupId>/<hookId>", param_hint="ID")
    return group, hook_id


def _definition(path: str) -> dict[str, Any]:
    with open(path) as f:
        try:
            found = yaml.safe_load(f)
        except yaml.YAMLError as e:
            raise click.BadParameter(f"{path} is not YAML or JSON: {e}", param_hint="FILE") from None
    if not isinstance(found, dict):
        raise click.BadParameter(f"{path} does not hold a hook definition (an object)", param_hint="FILE")
    return found


@click.group(cls=CairnGroup)
def hook() -> None:
    """List, define, trigger and remove hooks; see their fires."""


def _print_hook(found: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(found)
        return
    print_fields(
        [
            ("hook", f"{found['hookGroupId']}/{found['hookId']}"),
            ("name", found["metadata"]["name"]),
            ("owner", found["metadata"]["owner"]),
            ("schedule", found["schedule"]),
            ("bindings", [f"{b['exchange']} {b['routingKeyPattern']}" for b in found.get("bindings", [])]),
        ]
    )


@hook.command("list")
@click.argument("group", required=False)
@json_option
def hook_list(group: str | None, as_json: bool) -> None:
    """Every hook, or those of one group."""
    hooks = api("hooks")
    groups = [group] if group else hooks.listHookGroups()["groups"]
    found = [h for g in groups for h in hooks.listHooks(g)["hooks"]]
    if as_json:
        print_json({"hooks": found})
        return
    print_table(
        ("hook", "name", "schedule", "bindings"),
        ((f"{h['hookGroupId']}/{h['hookId']}", h["metadata"]["name"], " | ".join(h["schedule"]),
          len(h.get("bindings", []))) for h in found),
    )


@hook.command("show")
@click.argument("name", metavar="ID")
@json_option
def hook_show(name: str, as_json: bool) -> None:
    """A hook's definition, and its next scheduled date."""
    hooks = api("hooks")
    found = hooks.hook(*_ids(name))
    if as_json:
        print_json(found)
        return
    _print_hook(found, False)
    status = hooks.getHookStatus(*_ids(name))
    print_fields([("lastFire", status["lastFire"].get("result")), ("next", status.get("nextScheduledDate", ""))])


@hook.command("create")
@click.argument("name", metavar="ID")
@click.argument("path", metavar="FILE", type=click.Path(exists=True, dir_okay=False))
@json_option
def hook_create(name: str, path: str, as_json: bool) -> None:
    """Create a hook from a definition file."""
    _print_hook(api("hooks").createHook(*_ids(name), _definition(path)), as_json)


@hook.command("update")
@click.argument("name", metavar="ID")
@click.argument("path", metavar="FILE", type=click.Path(exists=True, dir_okay=False))
@json_option
def hook_update(name: str, path: str, as_json: bool) -> None:
    """Replace a hook's definition with a file's."""
    _print_hook(api("hooks").updateHook(*_ids(name), _definition(path)), as_json)


@hook.command("remove")
@click.argument("name", metavar="ID")
@json_option
def hook_remove(name: str, as_json: bool) -> None:
    """Remove a hook; its history stays in the log."""
    group_id, hook_id = _ids(name)
    api("hooks").removeHook(group_id, hook_id)
    if as_json:
        print_json({"hookGroupId": group_id, "hookId": hook_id, "removed": True})


@hook.command("trigger")
@click.argument("name", metavar="ID")
@click.option("--payload", default="{}", show_default=True, help="The trigger payload, a JSON object.")
@json_option
def hook_trigger(name: str, payload: str, as_json: bool) -> None:
    """Fire a hook now, with a payload its triggerSchema accepts; prints the task id."""
    try:
        body = yaml.safe_load(payload)
    except yaml.YAMLError as e:
        raise click.BadParameter(f"not JSON: {e}", param_hint="--payload") from None
    if not isinstance(body, dict):
        raise click.BadParameter("the payload must be a JSON object", param_hint="--payload")
    answer = api("hooks").triggerHook(*_ids(name), body)
    if as_json:
        print_json(answer)
    elif answer.get("taskId"):
        click.echo(answer["taskId"])
    else:
        click.echo("the hook's template created no task", err=True)


@hook.command("fires")
@click.argument("name", metavar="ID")
@json_option
def hook_fires(name: str, as_json: bool) -> None:
    """A hook's fires, newest first: what fired it, the task, and how it went."""
    found = paged(api("hooks").listLastFires, "lastFires", *_ids(name))
    if as_json:
        print_json({"lastFires": found})
        return
    print_table(
        ("time", "firedBy", "taskId", "result", "taskState", "error"),
        ((f["taskCreateTime"], f["firedBy"], f["taskId"], f["result"], f["taskState"], f["error"][:80])
         for f in found),
        fold=("error",),
    )
