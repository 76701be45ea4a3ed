"""``cairn secret ...``: secrets through the secrets service, with the TASKCLUSTER_* credentials.

A secret's value is printed only when asked for with ``--reveal``.
"""

from __future__ import annotations

import sys

import click
import yaml

from cairn.cli_output import CairnGroup, api, json_option, paged, print_fields, print_json, print_table


@click.group(cls=CairnGroup)
def secret() -> None:
    """List, read, set and remove secrets."""


@secret.command("list")
@json_option
def secret_list(as_json: bool) -> None:
    """Names of every secret that has not expired."""
    names = paged(api("secrets").list, "secrets")
    if as_json:
        print_json({"secrets": names})
        return
    print_table(("name",), ((name,) for name in names))


@secret.command("get")
@click.argument("name")
@click.option("--reveal", is_flag=True, help="Print the value too (it is hidden otherwise).")
@json_option
def secret_get(name: str, reveal: bool, as_json: bool) -> None:
    """A secret's expiry, and its value with --reveal."""
    found = api("secrets").get(name)
    if not reveal:
        found["secret"] = "(hidden: use --reveal)"
    if as_json:
        print_json({"name": name, **found})
        return
    print_fields([("name", name), ("expires", found["expires"]), ("secret", found["secret"])])


@secret.command("set")
@click.argument("name")
@click.option("--value", "value", default="-",
              help="The value, a JSON object.  [default: read from standard input, out of the shell history]")
@click.option("--expires", default="1 year", show_default=True, help="How long it lasts, from now.")
@json_option
def secret_set(name: str, value: str, expires: str, as_json: bool) -> None:
    """Set a secret's value and expiry."""
    import taskcluster

    text = sys.stdin.read() if value == "-" else value
    try:
        body = yaml.safe_load(text)
    except yaml.YAMLError:
        raise click.BadParameter("not a JSON object", param_hint="--value") from None
    if not isinstance(body, dict):
        raise click.BadParameter("the value must be a JSON object", param_hint="--value")
    try:
        when = taskcluster.fromNow(expires)
    except ValueError:
        raise click.BadParameter(f"{expires!r} is not a time from now such as 1h, 30 days", param_hint="--expires") from None
    api("secrets").set(name, {"secret": body, "expires": taskcluster.stringDate(when)})
    if as_json:
        print_json({"name": name, "expires": taskcluster.stringDate(when)})


@secret.command("remove")
@click.argument("name")
@json_option
def secret_remove(name: str, as_json: bool) -> None:
    """Remove a secret; its history (never its value) stays in the log."""
    api("secrets").remove(name)
    if as_json:
        print_json({"name": name, "removed": True})
