"""``cairn history``, ``cairn show --at`` and ``cairn replay``: reading Cairn's own log.

These commands open the database directly (CAIRN_DATABASE_URL, as the
server does), because the log is the source of everything they show:

- ``history`` lists an entity's events — position, version, type, the
  client that caused it, when, and what it recorded, with anything
  token-like redacted;
- ``show --at`` folds an entity's events up to a time or version and prints
  the state it had then;
- ``replay`` re-derives the Pulse messages of a range of the log, the same
  pure function of the events that the publisher uses, and prints them or
  publishes them again.

They never need the deployment key: a command run without it gets a
throwaway one rather than creating a key file; run where there is no
database they refuse rather than create one, and ``history`` then reads
the API when TASKCLUSTER_ROOT_URL is set (see ``cli_sources.py``).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import click

from cairn.cli_output import (
    CairnCommand,
    CairnGroup,
    compact,
    json_option,
    print_fields,
    print_json,
    print_json_line,
    print_table,
    stderr,
)
from cairn.cli_sources import HISTORY_ENDPOINTS, api_available, history_from_api, local_database, require_database

REPLAY_BATCH = 500
DATA_WIDTH = 100


@contextmanager
def opened_runtime() -> Iterator[Any]:
    """A Runtime on the configured database, closed afterwards; no background work is started.

    Refuses when there is no database here, and never creates a key file.
    """
    from cairn.runtime import Runtime

    runtime = Runtime(require_database())
    try:
        yield runtime
    finally:
        runtime.close()


def _keys() -> dict[str, Any]:
    from cairn.domain.auth.model import client_key, role_key
    from cairn.domain.github.model import build_key, delivery_key
    from cairn.domain.hooks.model import PREFIX as HOOK_PREFIX
    from cairn.domain.notify.model import notification_key
    from cairn.domain.queue.task import task_key
    from cairn.domain.secrets.model import secret_key

    return {"task": task_key, "client": client_key, "role": role_key, "notification": notification_key,
            "secret": secret_key, "hook": lambda name: HOOK_PREFIX + name,
            "github-build": build_key, "github-delivery": delivery_key}


# history


@click.group(cls=CairnGroup)
def history() -> None:
    """Events of a task, group, client, role, secret or hook.

    Each event with its log position, version, type, the client that caused
    it, when, and what it recorded (anything token-like redacted).
    """


def _history_command(kind: str) -> None:
    @history.command(kind, help=f"Every event of a {kind}, oldest first.")
    @click.argument("entity_id", metavar="ID")
    @click.option("--full", is_flag=True, help="Show each event's data in full in the table.")
    @json_option
    def command(entity_id: str, full: bool, as_json: bool) -> None:
        from cairn.api.history import all_history
        from cairn.contexts import log_history

        if _through_api(kind):
            _print_events(kind, entity_id, history_from_api(kind, entity_id), full, as_json)
            return
        with opened_runtime() as runtime:
            entries = [(None, e) for e in all_history(log_history(runtime), _keys()[kind](entity_id))]
        _print_history(kind, entity_id, entries, full, as_json)


def _through_api(kind: str) -> bool:
    """History comes from the API when there is no database here and TASKCLUSTER_ROOT_URL is set."""
    return kind in HISTORY_ENDPOINTS and local_database() is None and api_available()


for _kind in ("task", "client", "role", "notification", "secret", "hook", "github-build", "github-delivery"):
    _history_command(_kind)


@history.command("group")
@click.argument("task_group_id", metavar="ID")
@click.option("--full", is_flag=True, help="Show each event's data in full in the table.")
@json_option
def group_history(task_group_id: str, full: bool, as_json: bool) -> None:
    """Events of a group and its tasks, in log order."""
    from cairn.api.queue.history import group_history as merged_history
    from cairn.contexts import log_history

    if _through_api("group"):
        _print_events("task group", task_group_id, history_from_api("group", task_group_id), full, as_json)
        return
    with opened_runtime() as runtime:
        entries = merged_history(log_history(runtime), runtime.queue_reads, task_group_id)
    _print_history("task group", task_group_id, entries, full, as_json)


def _print_history(kind: str, entity_id: str, entries: list[tuple[str | None, Any]], full: bool, as_json: bool) -> None:
    from cairn.api.history import history_json

    events = []
    for task_id, entry in entries:
        event = history_json(entry)
        if task_id is not None:
            event["taskId"] = task_id
        events.append(event)
    _print_events(kind, entity_id, events, full, as_json)


def _print_events(kind: str, entity_id: str, events: list[dict[str, Any]], full: bool, as_json: bool) -> None:
    if not events:
        raise click.ClickException(f"no {kind} {entity_id} was ever recorded")
    if as_json:
        print_json({"events": events})
        return
    grouped = kind == "task group"
    columns = ("position", "version", *(("task",) if grouped else ()), "event", "who", "when", "data")
    print_table(
        columns,
        (
            (
                e["position"], e["version"], *((e.get("taskId", "(group)"),) if grouped else ()),
                e["type"], e["clientId"], e["time"], _data_cell(e["data"], full),
            )
            for e in events
        ),
        fold=("data",),
    )


def _data_cell(data: dict[str, Any], full: bool) -> str:
    text = compact(data) if data else ""
    return text if full or len(text) <= DATA_WIDTH else text[: DATA_WIDTH - 1] + "…"


# show --at


@click.group(cls=CairnGroup)
def show() -> None:
    """An entity's state as of a time or version.

    The state of a task, client or role, folded from its events up to --at.
    """


def _parse_at(at: str) -> int | datetime:
    from cairn.domain.timestamps import parse_time

    if at.isdigit():
        return int(at)
    try:
        return parse_time(at)
    except ValueError:
        raise click.BadParameter(f"{at!r} is neither a version nor an ISO time", param_hint="--at") from None


def state_at(runtime: Any, kind: str, entity_id: str, at: str | None) -> tuple[Any, Any]:
    """The aggregate as it was after the last event at or before ``at``, and that event."""
    from cairn.api.history import all_history
    from cairn.contexts import log_history
    from cairn.domain.timestamps import iso, parse_time

    key = _keys()[kind](entity_id)
    entries = all_history(log_history(runtime), key)
    if not entries:
        raise click.ClickException(f"no {kind} {entity_id} was ever recorded")
    point = _parse_at(at) if at is not None else entries[-1].version
    if isinstance(point, int):
        chosen = [e for e in entries if e.version == point]
        if not chosen:
            raise click.ClickException(f"{kind} {entity_id} has versions 1 to {entries[-1].version}, not {point}")
    else:
        # Compared as shown (milliseconds), so a time copied from the history includes its event.
        chosen = [e for e in entries if parse_time(iso(e.time)) <= point]
        if not chosen:
            raise click.ClickException(
                f"{kind} {entity_id} did not exist yet at {iso(point)}; its first event is at {iso(entries[0].time)}"
            )
    entry = chosen[-1]
    return runtime.log.repository.get(key, version=entry.version), entry


def _at_option(f: Any) -> Any:
    return click.option("--at", help="An ISO time (UTC unless it says otherwise) or a version.  [default: now]")(f)


def _as_of(entry: Any) -> dict[str, Any]:
    from cairn.domain.timestamps import iso

    return {"version": entry.version, "time": iso(entry.time), "clientId": entry.actor, "event": entry.type}


@show.command("task")
@click.argument("task_id", metavar="ID")
@_at_option
@json_option
def show_task(task_id: str, at: str | None, as_json: bool) -> None:
    """A task's status and definition as of --at."""
    from cairn.cli_tasks import print_status, print_yaml
    from cairn.projections.history import redact

    with opened_runtime() as runtime:
        found, entry = state_at(runtime, "task", task_id, at)
    # As in the history, nothing token-like leaves the log (e.g. a token in payload.env).
    result = {"taskId": task_id, "asOf": _as_of(entry), "status": found.status(), "task": redact(found.public_definition())}
    if as_json:
        print_json(result)
        return
    _print_as_of(entry)
    print_status(result["status"])
    click.echo()
    print_yaml(result["task"])


@show.command("client")
@click.argument("client_id", metavar="ID")
@_at_option
@json_option
def show_client(client_id: str, at: str | None, as_json: bool) -> None:
    """A client as of --at (never its access token)."""
    with opened_runtime() as runtime:
        found, entry = state_at(runtime, "client", client_id, at)
    result = {
        "clientId": found.client_id,
        "asOf": _as_of(entry),
        "description": found.description,
        "expires": found.expires,
        "scopes": list(found.scopes),
        "deleteOnExpiration": found.delete_on_expiration,
        "disabled": found.disabled,
        "deleted": found.deleted,
    }
    if as_json:
        print_json(result)
        return
    _print_as_of(entry)
    print_fields([(k, v) for k, v in result.items() if k != "asOf"])


@show.command("role")
@click.argument("role_id", metavar="ID")
@_at_option
@json_option
def show_role(role_id: str, at: str | None, as_json: bool) -> None:
    """A role as of --at."""
    with opened_runtime() as runtime:
        found, entry = state_at(runtime, "role", role_id, at)
    result = {
        "roleId": found.role_id,
        "asOf": _as_of(entry),
        "description": found.description,
        "scopes": list(found.scopes),
        "deleted": found.deleted,
    }
    if as_json:
        print_json(result)
        return
    _print_as_of(entry)
    print_fields([(k, v) for k, v in result.items() if k != "asOf"])


def _print_as_of(entry: Any) -> None:
    as_of = _as_of(entry)
    stderr().print(f"# as of version {as_of['version']} ({as_of['event']} by {as_of['clientId']} at {as_of['time']})")


# replay


@click.command(cls=CairnCommand)
@click.option("--from", "start", type=click.IntRange(1), default=1, show_default=True,
              help="First log position to replay.")
@click.option("--to", "end", type=click.IntRange(1), default=None, help="Last log position to replay.  [default: the head]")
@click.option("--publish", is_flag=True, help="Publish the messages again to CAIRN_AMQP_URL instead of printing them.")
@json_option
def replay(start: int, end: int | None, publish: bool, as_json: bool) -> None:
    """Re-derive the Pulse messages of a log range.

    Prints one JSON object a line (exchange, routingKey, cc, messageId,
    payload, position), or with --publish sends them to RabbitMQ as the
    publisher does, with the same message ids, leaving its position alone.
    With --json: one JSON document, {from, to, messages} (or {from, to,
    published}).
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with opened_runtime() as runtime:
        head = runtime.log.recorder.max_notification_id() or 0
        end = head if end is None else min(end, head)
        if end < start:
            raise click.ClickException(f"nothing to replay: the log ends at position {head}")
        if publish and not runtime.settings.amqp_url:
            raise click.ClickException("CAIRN_AMQP_URL is not set: there is nowhere to publish")
        # On stderr, and only when stdout is not the same terminal; never capturing stdout.
        progress = Progress(
            TextColumn("replaying"), BarColumn(), MofNCompleteColumn(), console=stderr(), transient=True,
            redirect_stdout=False, redirect_stderr=False, disable=not publish and sys.stdout.isatty(),
        )
        with progress:
            bar = progress.add_task("replay", total=end - start + 1)
            items = _derived(runtime, start, end, lambda position: progress.update(bar, completed=position - start + 1))
            if publish:
                publisher = runtime.make_pulse_publisher()
                count = asyncio.run(publisher.publish_once(item.message for item in items))
            elif as_json:
                messages = [_message_json(item) for item in items]
                count = len(messages)
            else:
                count = 0
                for item in items:
                    print_json_line(_message_json(item))
                    count += 1
    if as_json:
        done = {"published": count} if publish else {"messages": messages}
        print_json({"from": start, "to": end, **done})
        return
    stderr().print(f"# {'published' if publish else 'derived'} {count} message(s) from log positions {start} to {end}")


def _derived(runtime: Any, start: int, end: int, advanced: Any) -> Iterator[Any]:
    from cairn.consumers.log_follower import AggregateFolder, read_range
    from cairn.consumers.pulse_derivation import derive

    folder = AggregateFolder(runtime.log)
    for logged in read_range(runtime.log, start - 1, end, REPLAY_BATCH):
        yield from derive(folder, logged)
        advanced(logged[-1].position)


def _message_json(item: Any) -> dict[str, Any]:
    message = item.message
    return {
        "exchange": message.exchange,
        "routingKey": message.routing_key,
        "cc": message.cc,
        "messageId": message.message_id,
        "payload": message.body,
        "position": item.position.notification,
    }

