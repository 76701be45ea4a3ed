"""The secrets service: named JSON values, readable with ``secrets:get:<name>``.

Values are sealed with the deployment key before any event holds them; a
request body's value is never echoed in an error (``set`` answers a bad
body without it). ``get`` of a secret past its expiry is ``410
ResourceExpired``; the time-driven pass records the expiry as an event.
"""

from __future__ import annotations

from typing import Any

from cairn.api.call import Call
from cairn.api.endpoints import Service
from cairn.api.errors import InputError
from cairn.api.pagination import page
from cairn.api.secrets.context import SecretsContext
from cairn.domain.timestamps import iso, parse_time, utcnow

secrets = Service(
    name="secrets",
    title="Secrets Service",
    description=(
        "The secrets service keeps named JSON values and hands them to callers whose scopes "
        "allow (`secrets:get:<name>`), such as tasks through taskclusterProxy. Values are "
        "sealed with the deployment key at rest, and never appear in the log, its history or "
        "its messages; who set or removed a secret, and when, does."
    ),
)

NAME: dict[str, Any] = {"greedy": ("name",), "params": {"name": r"[\x20-\x7e]+"}}


@secrets.endpoint(
    "set", "PUT", "/secret/<name>", title="Set Secret", category="Secrets Service",
    scopes="secrets:set:<name>", input="secret", **NAME,
)
def set_secret(call: Call[SecretsContext]) -> None:
    """Set the secret's value and expiry, creating it if needed."""
    try:
        parse_time(call.body["expires"])
    except ValueError:
        raise InputError("expires is not a date and time") from None
    call.context.secrets.set(call.params["name"], call.body["secret"], call.body["expires"])
    return None


@secrets.endpoint(
    "remove", "DELETE", "/secret/<name>", title="Delete Secret", category="Secrets Service",
    scopes="secrets:set:<name>", **NAME,
)
def remove_secret(call: Call[SecretsContext]) -> None:
    """Remove the secret; removing one that does not exist changes nothing."""
    call.context.secrets.remove(call.params["name"])
    return None


@secrets.endpoint(
    "get", "GET", "/secret/<name>", title="Read Secret", category="Secrets Service",
    scopes="secrets:get:<name>", output="secret", **NAME,
)
def get_secret(call: Call[SecretsContext]) -> dict[str, Any]:
    """The secret's value and expiry; 410 once it has expired."""
    value, expires = call.context.secrets.get(call.params["name"], utcnow())
    return {"secret": value, "expires": expires}


@secrets.endpoint(
    "list", "GET", "/secrets", title="List Secrets", category="Secrets Service",
    scopes="secrets:list-secrets", output="secret-list", query=("continuationToken", "limit"),
)
def list_secrets(call: Call[SecretsContext]) -> dict[str, Any]:
    """Names of the secrets that have not expired, in name order; never their values."""
    limit, after = page.bounds(call)
    names = call.context.reads.names(iso(utcnow()), after, limit + 1)
    more = {"continuationToken": page.token(names[limit - 1])} if len(names) > limit else {}
    return {"secrets": names[:limit], **more}
