"""A rebuild of the auth views reaches every running server: each reloads its cached clients and roles."""

from __future__ import annotations

import time
from typing import Any

import pytest

from cairn.domain.aggregate import acting_as
from tests.conftest import LiveServer
from tests.integration.test_projection_rebuild import EXPIRES, cli, mixed_workload, queue_apart

CLIENT = "team/builds"
ROLE = "project:builds"
#: team/builds's scopes as the log gives them, expanded through its role (every client assumes anonymous) ...
FROM_THE_LOG = ["assume:anonymous", "assume:project:builds", "auth:current-scopes", "queue:create-task:builds/*"]
#: ... and as the tampered rows give them.
TAMPERED = ["assume:anonymous", "assume:project:builds", "auth:*", "secrets:get:*"]


def epoch(runtime: Any) -> int:
    with runtime.store.reading() as session:
        row = session.one("get_auth_epoch")
    return row["epoch"] if row else 0


def tamper(runtime: Any) -> None:
    """Change the client's and its role's scopes in the views, behind the log's back and the epoch's."""
    with runtime.store.unit_of_work() as session:
        session.execute_sql(
            """UPDATE clients SET scopes = '["assume:project:builds", "auth:*"]' WHERE client_id = 'team/builds'"""
        )
        session.execute_sql("""UPDATE roles SET scopes = '["secrets:get:*"]' WHERE role_id = 'project:builds'""")


def current_scopes(server: LiveServer, access_token: str) -> list[str]:
    return server.client("auth", client_id=CLIENT, access_token=access_token).currentScopes()["scopes"]


def scopes_once_settled(server: LiveServer, access_token: str, expected: list[str], within: float = 5.0) -> list[str]:
    """The client's current scopes, asked again until they are ``expected`` or ``within`` seconds have passed."""
    deadline = time.monotonic() + within
    while (scopes := current_scopes(server, access_token)) != expected and time.monotonic() < deadline:
        time.sleep(0.1)
    return scopes


@pytest.mark.parametrize("in_lanes", [False, True], ids=["one-process", "lanes"])
def test_a_server_serves_the_rebuilt_auth_views_without_a_restart(runtime, in_lanes, monkeypatch):
    if in_lanes:
        if runtime.settings.backend != "postgres":
            pytest.skip("lanes fold PostgreSQL rebuilds only")
        from cairn.projections.rebuild import lanes

        monkeypatch.setattr(lanes, "plan", queue_apart)  # auth folded in a lane: a process of its own
    mixed_workload(runtime)
    with acting_as("tests"):
        token = runtime.auth.create_client(CLIENT, "", EXPIRES, ["assume:project:builds", "auth:current-scopes"], False)
        runtime.auth.create_role(ROLE, "", ["queue:create-task:builds/*"])
    tamper(runtime)
    replayed = epoch(runtime)  # the tampering moved no epoch: the log gives this one

    # A server that starts now caches the tampered rows, at the epoch a replay of the log reaches.
    server = LiveServer(runtime)
    server.start()
    try:
        assert current_scopes(server, token) == TAMPERED

        result = cli(runtime, "projections", "rebuild") if in_lanes else cli(runtime, "projections", "rebuild", "auth")
        assert result.exit_code == 0, result.output
        assert epoch(runtime) > replayed

        # Without a restart, and with no auth change since, the server serves what the log says.
        assert scopes_once_settled(server, token, FROM_THE_LOG) == FROM_THE_LOG
    finally:
        server.stop()

    result = cli(runtime, "projections", "verify", "auth")
    assert result.exit_code == 0, result.output
    assert "views match the log: auth" in result.output

    # The epoch is left out of the comparison; the clients and roles are not.
    tamper(runtime)
    result = cli(runtime, "projections", "verify", "auth")
    assert result.exit_code == 1, result.output
    assert f"auth: clients [client_id='{CLIENT}']: scopes is" in result.output
    assert f"auth: roles [role_id='{ROLE}']: scopes is" in result.output
    assert "auth_epoch" not in result.output


def test_every_rebuild_moves_the_auth_epoch_on_and_verify_still_passes(runtime):
    assert epoch(runtime) == 0  # no auth change yet: no epoch row
    assert cli(runtime, "projections", "rebuild", "auth").exit_code == 0
    assert epoch(runtime) == 1
    assert cli(runtime, "projections", "verify", "auth").exit_code == 0
    with acting_as("tests"):
        runtime.auth.create_role(ROLE, "", ["queue:create-task:builds/*"])
    assert epoch(runtime) == 2  # changes count on from where the rebuild left it
    assert cli(runtime, "projections", "rebuild").exit_code == 0
    assert epoch(runtime) == 3  # not the 1 the log's one change gives
    assert cli(runtime, "projections", "verify").exit_code == 0
