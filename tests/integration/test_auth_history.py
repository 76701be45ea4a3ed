"""Reading one aggregate's history from the event store, on SQLite and PostgreSQL."""

from __future__ import annotations

from cairn.domain.aggregate import acting_as
from cairn.domain.auth.model import client_key, role_key
from cairn.projections.history import read_history, redact

EXPIRES = "2031-01-01T00:00:00.000Z"


def test_history_is_one_aggregate_in_log_order_with_positions(runtime):
    with acting_as("static/root"):
        runtime.auth.create_client("team/ci", "CI", EXPIRES, ["a"], False)
        runtime.auth.create_role("team", "", ["a"])
    with acting_as("team/admin"):
        runtime.auth.reset_access_token("team/ci")
        runtime.auth.update_role("team", "", ["b"])
        runtime.auth.disable_client("team/ci")

    client = read_history(runtime.log, client_key("team/ci"))
    role = read_history(runtime.log, role_key("team"))
    assert [(e.version, e.type, e.actor) for e in client] == [
        (1, "ClientCreated", "static/root"),
        (2, "ClientAccessTokenReset", "team/admin"),
        (3, "ClientDisabled", "team/admin"),
    ]
    assert [e.type for e in role] == ["RoleCreated", "RoleScopesChanged"]
    # Positions are the events' places in the one log the two aggregates share.
    assert client[0].position < role[0].position < client[1].position < role[1].position < client[2].position
    assert client[0].data == {
        "client_id": "team/ci", "description": "CI", "expires": EXPIRES, "scopes": ["a"],
        "delete_on_expiration": False,
    }
    assert client[1].data == {}


def test_history_reads_in_pages_and_knows_nothing_of_strangers(runtime):
    with acting_as("static/root"):
        runtime.auth.create_role("team", "", [])
        for n in range(4):
            runtime.auth.update_role("team", str(n), [])
    page = read_history(runtime.log, role_key("team"), after=2, limit=2)
    assert [e.version for e in page] == [3, 4]
    assert read_history(runtime.log, role_key("team"), after=5) == []
    assert read_history(runtime.log, role_key("nobody")) == []


def test_redact_drops_secret_looking_fields_at_any_depth():
    fields = {
        "scopes": ["a"],
        "sealed_token": "x",
        "nested": {"accessToken": "y", "keep": [{"clientSecret": "z", "ok": 1}]},
        "Password": "p",
        "credentials": {"a": 1},
    }
    assert redact(fields) == {"scopes": ["a"], "nested": {"keep": [{"ok": 1}]}}
