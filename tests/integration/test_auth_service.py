"""The auth service on a real store (SQLite and PostgreSQL): commands, views and their rules."""

from __future__ import annotations

import threading

import pytest

from cairn.domain.aggregate import acting_as
from cairn.domain.errors import Conflict, InvalidInput, NotFound
from cairn.projections import auth_views

EXPIRES = "2031-01-01T00:00:00.000Z"


@pytest.fixture
def auth(runtime):
    with acting_as("static/root"):
        yield runtime.auth


def test_a_repeated_create_returns_the_same_token_and_a_different_one_conflicts(auth, runtime):
    token = auth.create_client("team/ci", "CI", EXPIRES, ["a"], False)
    assert auth.create_client("team/ci", "CI", EXPIRES, ["a"], False) == token
    with pytest.raises(Conflict):
        auth.create_client("team/ci", "CI", EXPIRES, ["b"], False)
    assert runtime.auth_cache.lookup_client("team/ci").access_token == token


def test_the_views_follow_every_change_to_managed_clients(auth, runtime):
    auth.create_client("team/ci", "CI", EXPIRES, ["a"], False)
    auth.update_client("team/ci", "CI bot", EXPIRES, None, True)
    auth.disable_client("team/ci")
    row = auth_views.get_client(runtime.store, "team/ci")
    assert (row["description"], row["scopes"], row["disabled"], row["delete_on_expiration"]) == (
        "CI bot", ["a"], True, True,
    )
    auth.delete_client("team/ci")
    assert auth_views.get_client(runtime.store, "team/ci") is None
    with pytest.raises(NotFound):
        auth.enable_client("team/ci")

    with pytest.raises(InvalidInput):
        auth.create_client("static/other", "", EXPIRES, [], False)
    with pytest.raises(InvalidInput):
        auth.delete_client("static/root")


def test_authorize_is_asked_only_about_added_scopes(auth, runtime):
    asked = []
    auth.create_client("team/ci", "CI", EXPIRES, ["a", "b"], False, authorize=asked.append)
    auth.update_client("team/ci", "CI", EXPIRES, ["b", "c"], False, authorize=asked.append)
    auth.create_role("base", "", ["x:*"], authorize=asked.append)
    auth.create_role("team", "", ["assume:base"], authorize=asked.append)
    auth.update_role("team", "", ["assume:base", "x:y", "z"], authorize=asked.append)
    assert asked == [["a", "b"], ["c"], ["x:*"], ["assume:base"], ["z"]]

    def refuse(scopes):
        raise PermissionError(scopes)

    with pytest.raises(PermissionError):
        auth.update_role("team", "", ["b"], authorize=refuse)
    assert auth_views.get_role(runtime.store, "team")["scopes"] == ["assume:base", "x:y", "z"]


def test_listings_are_in_code_point_order_with_prefix_and_pages(auth, runtime):
    for client_id in ["b/x", "B/y", "a-z", "a/z", "a"]:
        auth.create_client(client_id, "", EXPIRES, [], False)
    store = runtime.store
    everyone = [r["client_id"] for r in auth_views.list_clients(store, "", "", 10)]
    assert everyone == ["B/y", "a", "a-z", "a/z", "b/x"]
    assert [r["client_id"] for r in auth_views.list_clients(store, "a", "a", 10)] == ["a-z", "a/z"]
    assert [r["client_id"] for r in auth_views.list_clients(store, "", "a-z", 1)] == ["a/z"]

    for role_id in ["r:b", "R:a", "r:a*"]:
        auth.create_role(role_id, "", [])
    assert [r["role_id"] for r in auth_views.list_roles(store)] == ["R:a", "r:a*", "r:b"]
    assert [r["role_id"] for r in auth_views.list_roles(store, "R:a", 1)] == ["r:a*"]


def test_concurrent_role_changes_cannot_form_a_cycle(runtime):
    with acting_as("static/root"):
        runtime.auth.create_role("a", "", [])
        runtime.auth.create_role("b", "", [])
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def point(role_id: str, target: str) -> None:
        barrier.wait()
        try:
            with acting_as("static/root"):
                runtime.auth.update_role(role_id, "", [f"assume:{target}"])
            outcomes.append("updated")
        except InvalidInput:
            outcomes.append("refused")

    threads = [threading.Thread(target=point, args=pair) for pair in (("a", "b"), ("b", "a"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["refused", "updated"]
