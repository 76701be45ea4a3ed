"""The history of a client or role: who did what, in order — and never an access token."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest
import taskcluster
from taskcluster.exceptions import TaskclusterRestFailure

from cairn.api.auth.handlers import auth as auth_service
from tests.acceptance.cairn_clients import cairn_client

CairnAuth = cairn_client(taskcluster.Auth, auth_service)


def cairn_auth(server, **credentials):
    return CairnAuth(server.options(**credentials))


def client_body(description, scopes=()):
    return {"description": description, "expires": taskcluster.fromNow("1 hour"), "scopes": list(scopes)}


def test_client_history_shows_who_did_what_in_order(server):
    root = cairn_auth(server)
    admin_token = root.createClient(
        "test/admin", client_body("admin", ["auth:update-client:*", "auth:disable-client:*", "thing:*"])
    )["accessToken"]
    admin = cairn_auth(server, client_id="test/admin", access_token=admin_token)

    created = root.createClient("test/subject", client_body("subject"))
    admin.updateClient("test/subject", {**client_body("renamed", ["thing:a"]), "expires": created["expires"]})
    admin.disableClient("test/subject")
    root.resetAccessToken("test/subject")
    root.deleteClient("test/subject")

    events = root.clientHistory("test/subject")["events"]
    assert [(e["type"], e["clientId"]) for e in events] == [
        ("ClientCreated", "static/root"),
        ("ClientDescriptionChanged", "test/admin"),
        ("ClientScopesChanged", "test/admin"),
        ("ClientDisabled", "test/admin"),
        ("ClientAccessTokenReset", "static/root"),
        ("ClientDeleted", "static/root"),
    ]
    assert [e["version"] for e in events] == [1, 2, 3, 4, 5, 6]
    positions = [e["position"] for e in events]
    assert positions == sorted(positions) and len(set(positions)) == 6
    assert events[0]["data"]["description"] == "subject"
    assert events[2]["data"] == {"scopes": ["thing:a"]}
    assert events[4]["data"] == {}
    assert all(e["time"].endswith("Z") for e in events)

    # Deleted, the client keeps its history; pages follow each other.
    first = root.clientHistory("test/subject", query={"limit": 4})
    query = {"limit": 4, "continuationToken": first["continuationToken"]}
    rest = root.clientHistory("test/subject", query=query)
    assert first["events"] + rest["events"] == events
    assert "continuationToken" not in rest


def test_role_history_and_its_scope(server):
    root = cairn_auth(server)
    root.createRole("audited", {"description": "a", "scopes": ["thing:a"]})
    root.updateRole("audited", {"description": "a", "scopes": ["thing:b"]})
    events = root.roleHistory("audited")["events"]
    assert [e["type"] for e in events] == ["RoleCreated", "RoleScopesChanged"]
    assert events[1]["data"] == {"scopes": ["thing:b"]}

    token = root.createClient("test/nosy", client_body("nosy", ["auth:get-role:other"]))["accessToken"]
    with pytest.raises(TaskclusterRestFailure) as refused:
        cairn_auth(server, client_id="test/nosy", access_token=token).roleHistory("audited")
    assert refused.value.status_code == 403
    with pytest.raises(TaskclusterRestFailure) as missing:
        root.roleHistory("never-was")
    assert missing.value.status_code == 404


def stored_event_states(runtime) -> list[bytes]:
    """Every stored event, as the raw bytes in the database."""
    settings = runtime.settings
    if settings.backend == "sqlite":
        with sqlite3.connect(settings.sqlite_path) as db:
            return [bytes(row[0]) for row in db.execute("SELECT state FROM stored_events")]
    with psycopg.connect(settings.database_url) as db:
        return [bytes(row[0]) for row in db.execute("SELECT state FROM cairn_events")]


def test_no_access_token_is_ever_stored_or_shown(server):
    root = cairn_auth(server)
    tokens = []
    for n in range(3):
        client_id = f"test/secret-{n}"
        tokens.append(root.createClient(client_id, client_body("secret"))["accessToken"])
        tokens.append(root.resetAccessToken(client_id)["accessToken"])
        tokens.append(root.resetAccessToken(client_id)["accessToken"])
    root.deleteClient("test/secret-0")
    tokens.append(root.createClient("test/secret-0", client_body("again"))["accessToken"])

    states = stored_event_states(server.runtime)
    assert len(states) >= 11
    events = [e for n in range(3) for e in root.clientHistory(f"test/secret-{n}")["events"]]
    shown = str(events)
    for token in tokens:
        assert not any(token.encode() in state for state in states)
        assert token not in shown
    assert not [name for e in events for name in e["data"] if "token" in name.lower()]
