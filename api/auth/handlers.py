"""The auth service: clients, roles, scopes and request authentication.

Reads come from the clients and roles views; changes go through the auth
service, which records them as events. Endpoints that grant scopes check
them where the set to check is known: ``createClient`` and ``createRole``
the scopes given, ``updateClient`` and ``updateRole`` only the scopes the
change adds, decided on the state it applies to.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from cairn.api.auth.context import AuthContext
from cairn.api.authentication import authenticate
from cairn.api.call import Call, require
from cairn.api.endpoints import Service
from cairn.api.errors import InputError, InvalidRequestArguments, ResourceNotFound
from cairn.api.hawk import HawkAuthenticator, HawkRequest, NonceStore
from cairn.api.history import history_page
from cairn.api.pagination import page
from cairn.domain.auth.credentials import ClientRecord
from cairn.domain.auth.model import client_key, refuse_static, role_key
from cairn.domain.auth.scopes import normalize_scopes, satisfies
from cairn.domain.timestamps import iso, parse_time
from cairn.projections.auth.cache import FAR_FUTURE

auth = Service(
    name="auth",
    title="Authentication API",
    description=(
        "Manages clients and roles, expands scopes through roles, and authenticates "
        "Hawk-signed requests for other services. Every change to a client or role is "
        "an event; their full history is available."
    ),
)

CLIENT_ID = r"[A-Za-z0-9!@/:.+|_-]+"
ROLE_ID = r"[\x20-\x7e]+"
# Ids may contain slashes, so they take the rest of the path; routes that
# continue after the id are declared before the route that ends with it.
CLIENT_ROUTE: dict[str, Any] = {"params": {"clientId": CLIENT_ID}, "greedy": ("clientId",)}
ROLE_ROUTE: dict[str, Any] = {"params": {"roleId": ROLE_ID}, "greedy": ("roleId",)}
PAGED = ("continuationToken", "limit")
_CLIENT_ID = re.compile(CLIENT_ID)


def granting(scope: str, granted: str) -> dict[str, Any]:
    """``scope`` and every scope in the list parameter ``granted``."""
    return {"AllOf": [scope, {"for": "scope", "in": granted, "each": "<scope>"}]}



# clients


AuthCall = Call[AuthContext]


def client_json(ctx: AuthContext, client_id: str) -> dict[str, Any]:
    row = ctx.reads.client(client_id)
    if row is None:
        static = ctx.cache.static_clients.get(client_id)
        if static is None:
            raise ResourceNotFound("Client not found")
        return static_client_json(ctx, static)
    return client_row_json(ctx, row)


def client_row_json(ctx: AuthContext, row: dict[str, Any]) -> dict[str, Any]:
    return {
        "clientId": row["client_id"],
        "description": row["description"],
        "expires": row["expires"],
        "created": row["created"],
        "lastModified": row["last_modified"],
        "lastDateUsed": row["last_date_used"],
        "lastRotated": row["last_rotated"],
        "deleteOnExpiration": row["delete_on_expiration"],
        "scopes": row["scopes"],
        "expandedScopes": ctx.cache.expand(row["scopes"]),
        "disabled": row["disabled"],
    }


def static_client_json(ctx: AuthContext, static: Any) -> dict[str, Any]:
    configured = iso(static.configured)
    return {
        "clientId": static.client_id,
        "description": static.description,
        "expires": iso(FAR_FUTURE),
        "created": configured,
        "lastModified": configured,
        "lastDateUsed": configured,
        "lastRotated": configured,
        "deleteOnExpiration": False,
        "scopes": list(static.scopes),
        "expandedScopes": ctx.cache.expand(list(static.scopes)),
        "disabled": False,
    }


def expiry(text: str) -> str:
    """A client's ``expires`` as stored and returned: UTC, milliseconds, ``Z``."""
    try:
        return iso(parse_time(text))
    except ValueError:
        raise InputError(f"expires {text!r} is not a date and time") from None


@auth.endpoint(
    "listClients", "GET", "/clients/", title="List Clients", category="Clients",
    scopes="auth:list-clients", output="list-clients-response", query=("prefix", *PAGED),
)
def list_clients(call: AuthCall) -> dict[str, Any]:
    """List clients in id order, optionally only those whose id starts with ``prefix``."""
    prefix = call.query.get("prefix", "")
    if prefix and not _CLIENT_ID.fullmatch(prefix):
        raise InvalidRequestArguments(f"Query-string parameter prefix={prefix!r} is not a clientId.")
    limit, after = page.bounds(call)
    found = call.context.reads.clients(prefix, after, limit + 1)
    rows = [client_row_json(call.context, row) for row in found]
    static = [
        static_client_json(call.context, client)
        for client_id, client in call.context.cache.static_clients.items()
        if client_id.startswith(prefix) and client_id > after
    ]
    merged = sorted(rows + static, key=lambda c: c["clientId"])
    clients, more = page.cut(merged, limit, lambda c: c["clientId"])
    return {"clients": clients, **more}


@auth.endpoint(
    "resetAccessToken", "POST", "/clients/<clientId>/reset", title="Reset `accessToken`",
    category="Clients", scopes="auth:reset-access-token:<clientId>",
    output="create-client-response", deferred_auth=True, **CLIENT_ROUTE,
)
def reset_access_token(call: AuthCall) -> dict[str, Any]:
    """Replace a client's access token with a new one, returned only here."""
    client_id = call.params["clientId"]
    refuse_static(client_id)
    call.authorize()
    token = call.context.service.reset_access_token(client_id)
    return {**client_json(call.context, client_id), "accessToken": token}


def _managed_client_command(call: AuthCall, command: Callable[[str], Any]) -> dict[str, Any]:
    """Run ``command`` on a client Cairn manages (a static client is refused before authorization)."""
    client_id = call.params["clientId"]
    refuse_static(client_id)
    call.authorize()
    command(client_id)
    return client_json(call.context, client_id)


@auth.endpoint(
    "enableClient", "POST", "/clients/<clientId>/enable", title="Enable Client",
    category="Clients", scopes="auth:enable-client:<clientId>",
    output="get-client-response", deferred_auth=True, **CLIENT_ROUTE,
)
def enable_client(call: AuthCall) -> dict[str, Any]:
    """Enable a disabled client; an enabled one stays as it is."""
    return _managed_client_command(call, call.context.service.enable_client)


@auth.endpoint(
    "disableClient", "POST", "/clients/<clientId>/disable", title="Disable Client",
    category="Clients", scopes="auth:disable-client:<clientId>",
    output="get-client-response", deferred_auth=True, **CLIENT_ROUTE,
)
def disable_client(call: AuthCall) -> dict[str, Any]:
    """Disable a client, so that its credentials no longer authenticate."""
    return _managed_client_command(call, call.context.service.disable_client)


@auth.endpoint(
    "clientHistory", "GET", "/clients/<clientId>/history", title="Client History",
    category="Clients", scopes="auth:get-client:<clientId>",
    output="list-entity-history-response", query=PAGED, stability="experimental", **CLIENT_ROUTE,
)
def client_history(call: AuthCall) -> dict[str, Any]:
    """Every recorded change to a client, oldest first: what changed, who changed it, when."""
    return _history(call, client_key(call.params["clientId"]), "client")


@auth.endpoint(
    "client", "GET", "/clients/<clientId>", title="Get Client", category="Clients",
    scopes="auth:get-client:<clientId>", output="get-client-response", **CLIENT_ROUTE,
)
def client(call: AuthCall) -> dict[str, Any]:
    """Get a client, without its access token."""
    return client_json(call.context, call.params["clientId"])


@auth.endpoint(
    "createClient", "PUT", "/clients/<clientId>", title="Create Client", category="Clients",
    scopes=granting("auth:create-client:<clientId>", "scopes"),
    input="create-client-request", output="create-client-response", deferred_auth=True,
    **CLIENT_ROUTE,
)
def create_client(call: AuthCall) -> dict[str, Any]:
    """Create a client and return its access token, which cannot be fetched again.

    The caller must hold every scope it gives the client. Repeating the same
    create within 15 minutes returns the same client; any other create of an
    existing client is a conflict.
    """
    client_id, body = call.params["clientId"], call.body
    token = call.context.service.create_client(
        client_id,
        body["description"],
        expiry(body["expires"]),
        body.get("scopes", []),
        body.get("deleteOnExpiration", False),
        authorize=lambda scopes: call.authorize(scopes=scopes),
    )
    return {**client_json(call.context, client_id), "accessToken": token}


@auth.endpoint(
    "updateClient", "POST", "/clients/<clientId>", title="Update Client", category="Clients",
    scopes=granting("auth:update-client:<clientId>", "scopesAdded"),
    input="create-client-request", output="get-client-response", deferred_auth=True,
    **CLIENT_ROUTE,
)
def update_client(call: AuthCall) -> dict[str, Any]:
    """Update a client's description, expiry and scopes (kept when not given).

    The caller must hold the scopes being added, not those the client already has.
    """
    client_id, body = call.params["clientId"], call.body
    call.context.service.update_client(
        client_id,
        body["description"],
        expiry(body["expires"]),
        body.get("scopes"),
        body.get("deleteOnExpiration", False),
        authorize=lambda added: call.authorize(scopesAdded=added),
    )
    return client_json(call.context, client_id)


@auth.endpoint(
    "deleteClient", "DELETE", "/clients/<clientId>", title="Delete Client", category="Clients",
    scopes="auth:delete-client:<clientId>", deferred_auth=True, **CLIENT_ROUTE,
)
def delete_client(call: AuthCall) -> None:
    """Delete a client; deleting one that does not exist succeeds."""
    client_id = call.params["clientId"]
    refuse_static(client_id)
    call.authorize()
    call.context.service.delete_client(client_id)


# roles


def role_json(ctx: AuthContext, row: dict[str, Any]) -> dict[str, Any]:
    return {
        "roleId": row["role_id"],
        "description": row["description"],
        "scopes": row["scopes"],
        "expandedScopes": ctx.cache.expand([f"assume:{row['role_id']}"]),
        "created": row["created"],
        "lastModified": row["last_modified"],
    }


def load_role(ctx: AuthContext, role_id: str) -> dict[str, Any]:
    row = ctx.reads.role(role_id)
    if row is None:
        raise ResourceNotFound("Role not found")
    return role_json(ctx, row)


def role_page(call: AuthCall) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Roles in id order: all of them, or a page when ``limit`` is given."""
    if "limit" not in call.query:
        return call.context.reads.roles(), {}
    limit, after = page.bounds(call)
    rows = call.context.reads.roles(after, limit + 1)
    return page.cut(rows, limit, lambda row: row["role_id"])


@auth.endpoint(
    "listRoles", "GET", "/roles/", title="List Roles (no pagination)", category="Roles",
    scopes="auth:list-roles", output="list-roles-response",
)
def list_roles(call: AuthCall) -> list[dict[str, Any]]:
    """Every role with the scopes it expands to, in one response."""
    return [role_json(call.context, row) for row in call.context.reads.roles()]


@auth.endpoint(
    "listRoleIds", "GET", "/roleids/", title="List Role IDs", category="Roles",
    scopes="auth:list-roles", output="list-role-ids-response", query=PAGED,
)
def list_role_ids(call: AuthCall) -> dict[str, Any]:
    """The ids of every role; paged when ``limit`` is given."""
    rows, more = role_page(call)
    return {"roleIds": [row["role_id"] for row in rows], **more}


@auth.endpoint(
    "listRoles2", "GET", "/roles2/", title="List Roles", category="Roles",
    scopes="auth:list-roles", output="list-roles2-response", query=PAGED,
)
def list_roles2(call: AuthCall) -> dict[str, Any]:
    """Every role with the scopes it expands to; paged when ``limit`` is given."""
    rows, more = role_page(call)
    return {"roles": [role_json(call.context, row) for row in rows], **more}


@auth.endpoint(
    "roleHistory", "GET", "/roles/<roleId>/history", title="Role History", category="Roles",
    scopes="auth:get-role:<roleId>", output="list-entity-history-response", query=PAGED,
    stability="experimental", **ROLE_ROUTE,
)
def role_history(call: AuthCall) -> dict[str, Any]:
    """Every recorded change to a role, oldest first: what changed, who changed it, when."""
    return _history(call, role_key(call.params["roleId"]), "role")


@auth.endpoint(
    "role", "GET", "/roles/<roleId>", title="Get Role", category="Roles",
    scopes="auth:get-role:<roleId>", output="get-role-response", **ROLE_ROUTE,
)
def role(call: AuthCall) -> dict[str, Any]:
    """Get a role and the scopes it expands to."""
    return load_role(call.context, call.params["roleId"])


@auth.endpoint(
    "createRole", "PUT", "/roles/<roleId>", title="Create Role", category="Roles",
    scopes=granting("auth:create-role:<roleId>", "scopes"),
    input="create-role-request", output="get-role-response", deferred_auth=True, **ROLE_ROUTE,
)
def create_role(call: AuthCall) -> dict[str, Any]:
    """Create a role; the caller must hold its scopes. The same create again changes nothing."""
    role_id, body = call.params["roleId"], call.body
    call.context.service.create_role(
        role_id, body["description"], body["scopes"],
        authorize=lambda scopes: call.authorize(scopes=scopes),
    )
    return load_role(call.context, role_id)


@auth.endpoint(
    "updateRole", "POST", "/roles/<roleId>", title="Update Role", category="Roles",
    scopes=granting("auth:update-role:<roleId>", "scopesAdded"),
    input="create-role-request", output="get-role-response", deferred_auth=True, **ROLE_ROUTE,
)
def update_role(call: AuthCall) -> dict[str, Any]:
    """Update a role; the caller must hold each new scope the role did not already grant."""
    role_id, body = call.params["roleId"], call.body
    call.context.service.update_role(
        role_id, body["description"], body["scopes"],
        authorize=lambda added: call.authorize(scopesAdded=added),
    )
    return load_role(call.context, role_id)


@auth.endpoint(
    "deleteRole", "DELETE", "/roles/<roleId>", title="Delete Role", category="Roles",
    scopes="auth:delete-role:<roleId>", **ROLE_ROUTE,
)
def delete_role(call: AuthCall) -> None:
    """Delete a role; deleting one that does not exist succeeds."""
    call.context.service.delete_role(call.params["roleId"])


# history


def _history(call: AuthCall, originator_id: str, kind: str) -> dict[str, Any]:
    return history_page(call, call.context.history, originator_id, f"No {kind} with this id was ever recorded")


# scopes and authentication


@auth.endpoint(
    "expandScopes", "POST", "/scopes/expand", title="Expand Scopes", category="Scopes and Auth",
    scopes="auth:expand-scopes", input="scopeset", output="scopeset",
)
def expand_scopes(call: AuthCall) -> dict[str, Any]:
    """The given scopes plus every scope the roles they assume grant, normalized."""
    return {"scopes": call.context.cache.expand(call.body["scopes"])}


@auth.endpoint(
    "currentScopes", "GET", "/scopes/current", title="Get Current Scopes",
    category="Scopes and Auth", scopes="auth:current-scopes", output="scopeset",
)
def current_scopes(call: AuthCall) -> dict[str, Any]:
    """The expanded scopes of this very request, after temporary credentials and authorizedScopes."""
    return {"scopes": call.caller.scopes}


@auth.endpoint(
    "authenticateHawk", "POST", "/authenticate-hawk", title="Authenticate Hawk Request",
    category="Scopes and Auth", input="authenticate-hawk-request",
    output="authenticate-hawk-response",
)
def authenticate_hawk(call: AuthCall) -> dict[str, Any]:
    """Check the Hawk signature of a request another service received; report the caller's scopes."""
    # A request checked for another service is a use of its client, as in Taskcluster.
    result = call.context.authentication.check(HawkRequest.from_json(call.body)).to_json()
    if result.get("scheme") == "bewit":
        result["scheme"] = "hawk"  # Taskcluster reports signed URLs as hawk too
    return result


TESTER_ID = "tester"
TESTER_ACCESS_TOKEN = "no-secret"
TESTER_GET_SCOPES = ("test:*", "auth:create-client:test:*")
_tester_nonces = NonceStore()


def tester_authenticator(scopes: list[str] | tuple[str, ...]) -> HawkAuthenticator:
    """Authenticates only ``tester``/``no-secret``, holding ``scopes`` and no roles."""
    tester = ClientRecord(TESTER_ID, TESTER_ACCESS_TOKEN, tuple(scopes), FAR_FUTURE)
    return HawkAuthenticator(
        lambda client_id: tester if client_id == TESTER_ID else None,
        normalize_scopes,
        satisfies,
        nonces=_tester_nonces,
    )


async def answer_as_tester(call: AuthCall, client_scopes: Any, required: list[str]) -> dict[str, Any]:
    authenticator = tester_authenticator(client_scopes)
    # No body: like Taskcluster, the payload hash is not checked here.
    caller = await authenticate(authenticator, call.request, None)  # type: ignore[arg-type]
    call.caller = caller
    require(caller, {"AllOf": required})
    call.authorize()
    return {"clientId": caller.client_id, "scopes": caller.scopes}


@auth.endpoint(
    "testAuthenticate", "POST", "/test-authenticate", title="Test Authentication",
    category="Scopes and Auth", input="test-authenticate-request",
    output="test-authenticate-response", own_authentication=True,
)
async def tester_authenticate(call: AuthCall) -> dict[str, Any]:
    """Check a client's Hawk signing against the fixed client `tester` / `no-secret`.

    The tester holds ``clientScopes`` from the body; the call requires
    ``requiredScopes``. Answers with the clientId and scopes the call had.
    """
    body = call.body
    return await answer_as_tester(call, body["clientScopes"], body["requiredScopes"])


@auth.endpoint(
    "testAuthenticateGet", "GET", "/test-authenticate-get/", title="Test Authentication (GET)",
    category="Scopes and Auth", output="test-authenticate-response", own_authentication=True,
)
async def tester_authenticate_get(call: AuthCall) -> dict[str, Any]:
    """Like testAuthenticate, for GET and signed URLs: the tester holds
    ``test:*`` and ``auth:create-client:test:*``; the call requires ``test:authenticate-get``."""
    return await answer_as_tester(call, TESTER_GET_SCOPES, ["test:authenticate-get"])
