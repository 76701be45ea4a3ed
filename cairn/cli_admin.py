"""``cairn signin``, ``cairn client ...`` and ``cairn role ...``: credentials and administration through auth.

All of it goes through the official ``taskcluster`` client with the
TASKCLUSTER_* credentials. An access token is printed only where the API
hands one out: signin, ``client create`` and ``client reset-token``.
"""

from __future__ import annotations

import datetime as dt
import shlex
from typing import Any

import click

from cairn.cli_output import (
    CairnCommand,
    CairnGroup,
    api,
    json_option,
    paged,
    print_fields,
    print_json,
    print_table,
    stderr,
    taskcluster_options,
)

#: Taskcluster refuses temporary credentials that last longer.
MAX_TEMPORARY = dt.timedelta(days=31)


def _future(offset: str, option: str) -> dt.datetime:
    import taskcluster

    try:
        return taskcluster.fromNow(offset)
    except ValueError:
        raise click.BadParameter(f"{offset!r} is not a time from now such as 1h, 30m, 2 days", param_hint=option) from None


# signin


@click.command(cls=CairnCommand)
@click.option("--scope", "scopes", multiple=True, help="A scope to grant (repeatable).  [default: all of yours]")
@click.option("--expires", default="1h", show_default=True, help="How long they last: 1h, 30m, 2 days (at most 31 days).")
@click.option("--name", help="A clientId for them (named temporary credentials; needs auth:create-client:<name>).")
@json_option
def signin(scopes: tuple[str, ...], expires: str, name: str | None, as_json: bool) -> None:
    """Print temporary credentials as export lines.

    They are made from your current (permanent) credentials.

    \b
    eval "$(cairn signin --scope 'queue:create-task:*' --expires 2h)"
    """
    import taskcluster

    options = taskcluster_options()
    credentials = options.get("credentials") or {}
    if not credentials.get("clientId") or not credentials.get("accessToken"):
        raise click.ClickException("TASKCLUSTER_CLIENT_ID and TASKCLUSTER_ACCESS_TOKEN must be set to sign in")
    if credentials.get("certificate"):
        raise click.ClickException(
            "the current credentials are temporary ones; sign in from permanent credentials "
            "(unset TASKCLUSTER_CERTIFICATE)"
        )
    start = dt.datetime.now(dt.timezone.utc)
    expiry = _future(expires, "--expires")
    if expiry - start > MAX_TEMPORARY:
        raise click.BadParameter("temporary credentials last at most 31 days", param_hint="--expires")
    held = api("auth").currentScopes()["scopes"]  # also proves the credentials work
    wanted = list(scopes) or held
    missing = [s for s in wanted if not taskcluster.utils.scopeMatch(held, [[s]])]
    if name and not taskcluster.utils.scopeMatch(held, [[f"auth:create-client:{name}"]]):
        missing.append(f"auth:create-client:{name}")
    if missing:
        raise click.ClickException(f"{credentials['clientId']} cannot grant what it does not hold: {' '.join(missing)}")
    made = taskcluster.createTemporaryCredentials(
        credentials["clientId"], credentials["accessToken"], start, expiry, wanted, name=name
    )
    temporary = {key: taskcluster.utils.toStr(value) for key, value in made.items()}  # the token comes as bytes
    if as_json:
        print_json({"rootUrl": options["rootUrl"], **temporary, "expires": taskcluster.stringDate(expiry), "scopes": wanted})
        return
    for variable, value in (
        ("TASKCLUSTER_ROOT_URL", options["rootUrl"]),
        ("TASKCLUSTER_CLIENT_ID", temporary["clientId"]),
        ("TASKCLUSTER_ACCESS_TOKEN", temporary["accessToken"]),
        ("TASKCLUSTER_CERTIFICATE", temporary["certificate"]),
    ):
        click.echo(f"export {variable}={shlex.quote(value)}")
    stderr().print(f"# temporary credentials for {len(wanted)} scope(s), valid until {taskcluster.stringDate(expiry)}")


# clients


@click.group(cls=CairnGroup)
def client() -> None:
    """List, create, change and delete clients."""


def _print_client(found: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(found)
        return
    fields = [
        ("clientId", found["clientId"]),
        ("description", found["description"]),
        ("expires", found["expires"]),
        ("disabled", found["disabled"]),
        ("deleteOnExpiration", found["deleteOnExpiration"]),
        ("lastDateUsed", found["lastDateUsed"]),
        ("lastRotated", found["lastRotated"]),
        ("scopes", found["scopes"]),
        ("expandedScopes", found["expandedScopes"]),
    ]
    if "accessToken" in found:
        fields.insert(1, ("accessToken", found["accessToken"]))
    print_fields(fields)
    if "accessToken" in found:
        stderr().print("# the access token is shown only this once")


@client.command("list")
@click.option("--prefix", default="", help="Only clients whose id starts with this.")
@json_option
def client_list(prefix: str, as_json: bool) -> None:
    """Every client, in id order."""
    query = {"prefix": prefix} if prefix else {}
    found = paged(api("auth").listClients, "clients", query=query)
    if as_json:
        print_json({"clients": found})
        return
    print_table(
        ("clientId", "description", "expires", "disabled", "scopes"),
        ((c["clientId"], _first_line(c["description"]), c["expires"], "yes" if c["disabled"] else "",
          len(c["scopes"])) for c in found),
    )


@client.command("show")
@click.argument("client_id")
@json_option
def client_show(client_id: str, as_json: bool) -> None:
    """A client, with its expanded scopes."""
    _print_client(api("auth").client(client_id), as_json)


@client.command("create")
@click.argument("client_id")
@click.option("--description", default="", help="What the client is for (markdown).")
@click.option("--scope", "scopes", multiple=True, help="A scope to give it (repeatable).")
@click.option("--expires", default="1 year", show_default=True, help="How long it lasts, from now.")
@click.option("--delete-on-expiration", is_flag=True, help="Delete it when it expires.")
@json_option
def client_create(client_id: str, description: str, scopes: tuple[str, ...], expires: str,
                  delete_on_expiration: bool, as_json: bool) -> None:
    """Create a client and print its access token.

    The token is shown only this once; it cannot be fetched again.
    """
    import taskcluster

    body = {
        "description": description,
        "expires": taskcluster.stringDate(_future(expires, "--expires")),
        "scopes": list(scopes),
        "deleteOnExpiration": delete_on_expiration,
    }
    _print_client(api("auth").createClient(client_id, body), as_json)


def _changed_scopes(current: list[str], scopes: tuple[str, ...], add: tuple[str, ...], remove: tuple[str, ...]) -> list[str]:
    result = list(scopes) if scopes else list(current)
    result += [s for s in add if s not in result]
    return [s for s in result if s not in remove]


@client.command("update")
@click.argument("client_id")
@click.option("--description", help="A new description.")
@click.option("--scope", "scopes", multiple=True, help="Replace its scopes with these (repeatable).")
@click.option("--add-scope", "add", multiple=True, help="A scope to add (repeatable).")
@click.option("--remove-scope", "remove", multiple=True, help="A scope to remove (repeatable).")
@click.option("--expires", help="A new expiry, from now (e.g. 1 year).")
@json_option
def client_update(client_id: str, description: str | None, scopes: tuple[str, ...], add: tuple[str, ...],
                  remove: tuple[str, ...], expires: str | None, as_json: bool) -> None:
    """Change a client's description, expiry or scopes."""
    import taskcluster

    auth = api("auth")
    current = auth.client(client_id)
    body = {
        "description": current["description"] if description is None else description,
        "expires": current["expires"] if expires is None else taskcluster.stringDate(_future(expires, "--expires")),
        "scopes": _changed_scopes(current["scopes"], scopes, add, remove),
        "deleteOnExpiration": current["deleteOnExpiration"],
    }
    _print_client(auth.updateClient(client_id, body), as_json)


@client.command("delete")
@click.argument("client_id")
@json_option
def client_delete(client_id: str, as_json: bool) -> None:
    """Delete a client (its history stays)."""
    api("auth").deleteClient(client_id)
    _done({"clientId": client_id, "deleted": True}, f"deleted client {client_id}", as_json)


@client.command("enable")
@click.argument("client_id")
@json_option
def client_enable(client_id: str, as_json: bool) -> None:
    """Enable a disabled client."""
    found = api("auth").enableClient(client_id)
    _done(found, f"enabled client {client_id}", as_json)


@client.command("disable")
@click.argument("client_id")
@json_option
def client_disable(client_id: str, as_json: bool) -> None:
    """Disable a client until it is enabled again."""
    found = api("auth").disableClient(client_id)
    _done(found, f"disabled client {client_id}", as_json)


@client.command("reset-token")
@click.argument("client_id")
@json_option
def client_reset_token(client_id: str, as_json: bool) -> None:
    """Give a client a new access token.

    The old one stops working; the new one is shown only this once.
    """
    _print_client(api("auth").resetAccessToken(client_id), as_json)


def _done(result: dict[str, Any], message: str, as_json: bool) -> None:
    if as_json:
        print_json(result)
    else:
        click.echo(message)


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


# roles


@click.group(cls=CairnGroup)
def role() -> None:
    """List, create, change and delete roles."""


def _print_role(found: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(found)
        return
    print_fields([
        ("roleId", found["roleId"]),
        ("description", found["description"]),
        ("created", found["created"]),
        ("lastModified", found["lastModified"]),
        ("scopes", found["scopes"]),
        ("expandedScopes", found["expandedScopes"]),
    ])


@role.command("list")
@json_option
def role_list(as_json: bool) -> None:
    """Every role, in id order."""
    found = paged(api("auth").listRoles2, "roles")
    if as_json:
        print_json({"roles": found})
        return
    print_table(
        ("roleId", "description", "scopes"),
        ((r["roleId"], _first_line(r["description"]), "\n".join(r["scopes"])) for r in found),
    )


@role.command("show")
@click.argument("role_id")
@json_option
def role_show(role_id: str, as_json: bool) -> None:
    """A role: its scopes and what they expand to."""
    _print_role(api("auth").role(role_id), as_json)


@role.command("create")
@click.argument("role_id")
@click.option("--description", default="", help="What the role is for (markdown).")
@click.option("--scope", "scopes", multiple=True, help="A scope it grants (repeatable).")
@json_option
def role_create(role_id: str, description: str, scopes: tuple[str, ...], as_json: bool) -> None:
    """Create a role."""
    _print_role(api("auth").createRole(role_id, {"description": description, "scopes": list(scopes)}), as_json)


@role.command("update")
@click.argument("role_id")
@click.option("--description", help="A new description.")
@click.option("--scope", "scopes", multiple=True, help="Replace its scopes with these (repeatable).")
@click.option("--add-scope", "add", multiple=True, help="A scope to add (repeatable).")
@click.option("--remove-scope", "remove", multiple=True, help="A scope to remove (repeatable).")
@json_option
def role_update(role_id: str, description: str | None, scopes: tuple[str, ...], add: tuple[str, ...],
                remove: tuple[str, ...], as_json: bool) -> None:
    """Change a role's description or scopes."""
    auth = api("auth")
    current = auth.role(role_id)
    body = {
        "description": current["description"] if description is None else description,
        "scopes": _changed_scopes(current["scopes"], scopes, add, remove),
    }
    _print_role(auth.updateRole(role_id, body), as_json)


@role.command("delete")
@click.argument("role_id")
@json_option
def role_delete(role_id: str, as_json: bool) -> None:
    """Delete a role (its history stays)."""
    api("auth").deleteRole(role_id)
    _done({"roleId": role_id, "deleted": True}, f"deleted role {role_id}", as_json)
