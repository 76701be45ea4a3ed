"""What every ``cairn`` command shares: the API client, JSON or rich output, and errors as one line.

Commands are built with :class:`CairnGroup` / :class:`CairnCommand`, which
turn any failure into a single ``Error: ...`` line on stderr and exit code 1
— a refusal from the API as its Taskcluster error code and the first line of
its message — never a traceback. Human output goes through rich to stdout;
``--json`` prints plain JSON for scripts instead. Progress and live displays
go to stderr, so that stdout stays what a script asked for.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Iterable
from typing import Any

import click
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from cairn.domain.errors import DomainError

STATE_STYLES = {
    "completed": "green",
    "failed": "red",
    "exception": "magenta",
    "running": "cyan",
    "pending": "yellow",
    "unscheduled": "dim",
}
RESOLVED = frozenset({"completed", "failed", "exception"})

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON, for scripts.")


# output


#: Width of tables written to a file or pipe, at the least.
PIPE_WIDTH = 200


class _Console(Console):
    def on_broken_pipe(self) -> None:
        reader_gone()


def stdout() -> Console:
    # Made per call: click's test runner swaps sys.stdout between invocations.
    console = _Console(highlight=False, soft_wrap=False)
    if not console.is_terminal:
        # Piped or captured: a wide table beats one with its values cut off.
        console.width = max(PIPE_WIDTH, console.width)
    return console


def stderr() -> Console:
    return _Console(stderr=True, highlight=False)


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def print_json_line(data: Any) -> None:
    click.echo(json.dumps(data, separators=(",", ":"), default=str))


def state_text(state: str) -> Text:
    return Text(state, style=STATE_STYLES.get(state, ""))


def table(*columns: str, fold: Iterable[str] = ()) -> Table:
    """A plain table; the ``fold`` columns wrap, the others keep to one line."""
    t = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for column in columns:
        if column in fold:
            t.add_column(column, overflow="fold")
        else:
            t.add_column(column, no_wrap=True)
    return t


def print_table(columns: Iterable[str], rows: Iterable[Iterable[Any]], fold: Iterable[str] = ()) -> None:
    t = table(*columns, fold=tuple(fold))
    for row in rows:
        t.add_row(*[cell if isinstance(cell, Text) else Text("" if cell is None else str(cell)) for cell in row])
    stdout().print(t)


def print_fields(fields: Iterable[tuple[str, Any]]) -> None:
    """``name  value`` lines; lists become one value per line."""
    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold")
    t.add_column()
    for name, value in fields:
        if isinstance(value, (list, tuple)):
            value = "\n".join(str(v) for v in value) or "-"
        t.add_row(name, value if isinstance(value, Text) else Text("-" if value is None else str(value)))
    stdout().print(t)


def compact(data: Any) -> str:
    return json.dumps(data, separators=(", ", ": "), default=str)


# the API client


def taskcluster_options() -> dict[str, Any]:
    """The official client's options from TASKCLUSTER_ROOT_URL, _CLIENT_ID, _ACCESS_TOKEN (and _CERTIFICATE)."""
    import taskcluster

    options = taskcluster.optionsFromEnvironment()
    if not options.get("rootUrl"):
        raise click.ClickException("TASKCLUSTER_ROOT_URL is not set: point it at Cairn, e.g. http://127.0.0.1:8080")
    options.setdefault("maxRetries", 2)
    return options


def api(service: str) -> Any:
    """An official ``taskcluster`` client for ``service`` (``queue``, ``auth``, ...)."""
    import taskcluster

    return getattr(taskcluster, service[0].upper() + service[1:])(taskcluster_options())


def paged(call: Callable[..., dict[str, Any]], key: str, *args: Any, query: dict[str, Any] | None = None) -> list[Any]:
    """Every item of a paged listing, following continuation tokens."""
    items: list[Any] = []
    query = dict(query or {})
    while True:
        result = call(*args, query=query)
        items.extend(result[key])
        token = result.get("continuationToken")
        if not token:
            return items
        query["continuationToken"] = token


# errors


_CODE_BLOCK = re.compile(r"```\n(.*?)\n```", re.DOTALL)
_OS_ERROR = re.compile(r"\[Errno -?\d+\] ([^\"')]+)")


def one_line(error: BaseException) -> str:
    """A failure in one line, as the user should read it."""
    if isinstance(error, ImportError) and error.name:
        package = error.name.split(".")[0]
        return f"this command needs the {package} package: pip install {package}"
    described = _client_failure(error)
    if described is not None:
        return described
    if isinstance(error, (DomainError, OSError, ValueError)):
        return _first_line(str(error)) or type(error).__name__
    return f"{type(error).__name__}: {_first_line(str(error))}"


def _client_failure(error: BaseException) -> str | None:
    """What the official client's exception says: the API's error code and message, or why it got no answer."""
    try:
        from taskcluster import exceptions
    except ImportError:  # then the failure cannot be the client's
        return None
    if isinstance(error, (exceptions.TaskclusterRestFailure, exceptions.TaskclusterAuthFailure)):
        body = error.body if isinstance(error.body, dict) else {}
        message = str(body.get("message") or error)
        line = _first_line(message)
        if body.get("code") == "InsufficientScopes":
            missing = _CODE_BLOCK.search(message)
            if missing:
                line += " " + " ".join(missing[1].split())
        elif body.get("code") == "InputValidationError":
            # The reason follows the first line: what the schema found wrong.
            reasons = [r.strip() for r in message.split("\n\n---")[0].splitlines()[1:] if r.strip()]
            if reasons:
                line += " " + "; ".join(reasons)
        code = body.get("code") or f"HTTP {getattr(error, 'status_code', '?')}"
        return f"{code}: {line}"
    if isinstance(error, exceptions.TaskclusterConnectionError):
        text = str(error.superExc or error)
        reason = _OS_ERROR.search(text)
        return f"cannot reach the server: {reason[1] if reason else _first_line(text)}"
    if isinstance(error, exceptions.TaskclusterFailure):
        return _first_line(str(error)) or type(error).__name__
    return None


def _first_line(text: str) -> str:
    for line in text.strip().splitlines():
        if line.strip():
            return line.strip()
    return ""


#: How a Unix tool ends when its reader has gone (128 + SIGPIPE).
BROKEN_PIPE_STATUS = 141


def reader_gone() -> None:
    """End quietly because stdout's reader has gone (``cairn show ... | head``), as Unix tools do."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so that the final flush finds nothing to complain about
    except (OSError, ValueError):
        pass
    raise click.exceptions.Exit(BROKEN_PIPE_STATUS)


class CairnCommand(click.Command):
    """A command whose failures are one line on stderr and exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except BrokenPipeError:
            reader_gone()
        except Exception as e:
            raise click.ClickException(one_line(e)) from None


class CairnGroup(click.Group):
    """A group whose commands and subgroups are CairnCommand / CairnGroup."""

    command_class = CairnCommand
    group_class = type
