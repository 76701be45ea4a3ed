"""The auth service on a real store (SQLite and PostgreSQL): commands, views and their rules."""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from datetime import timedelta

import pytest
from click.testing import CliRunner
from eventsourcing.persistence import OperationalError

from cairn.cli import main
from cairn.domain.aggregate import acting_as
from cairn.domain.auth.model import client_key
from cairn.domain.errors import Conflict, InvalidInput, NotFound
from cairn.domain.event_log import ConcurrentChange
from cairn.domain.timestamps import iso, parse_time, utcnow
from cairn.projections.auth import views as auth_views
from cairn.projections.auth.cache import ClientUse, StaticClient
from cairn.projections.history import read_history
from tests.conftest import SECRET_KEY

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


def epoch(runtime) -> int:
    with runtime.store.reading() as session:
        return session.one("get_auth_epoch")["epoch"]


def test_a_recorded_use_moves_last_date_used_and_nothing_else(auth, runtime):
    auth.create_client("team/ci", "CI", EXPIRES, ["a"], False)
    created = auth_views.get_client(runtime.store, "team/ci")
    assert created["last_date_used"] == created["created"]
    epoch_before = epoch(runtime)

    later = parse_time(created["created"]) + timedelta(hours=7)
    with acting_as("someone/else"):  # the use is the client's own, whoever asks
        assert runtime.auth.record_client_use("team/ci", later) == later
    assert auth.record_client_use("team/ci", later + timedelta(hours=1)) == later  # within 6 hours
    row = auth_views.get_client(runtime.store, "team/ci")
    assert row == {**created, "last_date_used": iso(later)}
    assert epoch(runtime) == epoch_before  # no process need reload its credentials
    assert [(e.type, e.actor) for e in read_history(runtime.log, client_key("team/ci"))] == [
        ("ClientCreated", "static/root"), ("ClientUsed", "team/ci"),
    ]

    assert auth.record_client_use("static/root", later) is None
    assert auth.record_client_use("nobody", later) is None
    auth.delete_client("team/ci")
    assert auth.record_client_use("team/ci", later + timedelta(days=1)) is None


def test_two_uses_recorded_at_once_make_one_event(auth, runtime):
    auth.create_client("team/ci", "CI", EXPIRES, [], False)
    later = utcnow() + timedelta(hours=7)
    barrier = threading.Barrier(4)
    results = []

    def use() -> None:
        barrier.wait()
        results.append(runtime.auth.record_client_use("team/ci", later))

    threads = [threading.Thread(target=use) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [later] * 4
    types = [e.type for e in read_history(runtime.log, client_key("team/ci"))]
    assert types == ["ClientCreated", "ClientUsed"]


def watched_use(use: ClientUse, runtime, client_id: str) -> None:
    """What Runtime.authenticate does around a request signed by ``client_id``."""
    with use.watching():
        assert runtime.auth_cache.lookup_client(client_id) is not None


def test_a_use_is_checked_in_memory_and_recorded_once_per_delay(auth, runtime):
    auth.create_client("team/ci", "CI", EXPIRES, [], False)
    calls = []

    def record(client_id, now, delay):
        calls.append(client_id)
        return runtime.auth.record_client_use(client_id, now, delay)

    fresh = ClientUse(runtime.auth_cache, record, timedelta(hours=6))
    for _ in range(50):
        watched_use(fresh, runtime, "team/ci")
        watched_use(fresh, runtime, "static/root")
    assert calls == []  # created just now: no use is due, and none was looked for in the database

    due = ClientUse(runtime.auth_cache, record, timedelta(0))
    watched_use(due, runtime, "team/ci")
    assert calls == ["team/ci"]
    created, used = read_history(runtime.log, client_key("team/ci"))
    assert (used.type, used.time > created.time) == ("ClientUsed", True)
    assert auth_views.get_client(runtime.store, "team/ci")["last_date_used"] == iso(used.time)

    # Another process, whose cache still has the creation as the last use,
    # asks once, learns of the use recorded since, and records nothing.
    other = ClientUse(runtime.auth_cache, record, timedelta(hours=6))
    other.used("team/ci", used.time + timedelta(hours=6))
    other.used("team/ci", used.time + timedelta(hours=6))
    assert calls == ["team/ci"] * 2
    assert len(read_history(runtime.log, client_key("team/ci"))) == 2

    # A request that fails authentication is no use.
    with pytest.raises(RuntimeError), due.watching():
        runtime.auth_cache.lookup_client("team/ci")
        raise RuntimeError("bad mac")
    assert calls == ["team/ci"] * 2


@pytest.mark.parametrize("trouble", [ConcurrentChange(), OperationalError("database away")])
def test_a_use_that_cannot_be_recorded_is_logged_and_not_retried_within_the_delay(
    auth, runtime, trouble, caplog
):
    auth.create_client("team/ci", "CI", EXPIRES, [], False)
    calls = []

    def record(client_id, now, delay):
        calls.append(client_id)
        raise trouble

    use = ClientUse(runtime.auth_cache, record, timedelta(seconds=60))
    soon = utcnow() + timedelta(seconds=61)
    with caplog.at_level(logging.DEBUG, logger="cairn.auth"):
        use.used("team/ci", soon)
        use.used("team/ci", soon + timedelta(seconds=1))
    assert calls == ["team/ci"]
    assert [r.levelno for r in caplog.records] == [logging.DEBUG]
    assert "team/ci" in caplog.records[0].getMessage()


def projections(runtime, *args: str):
    env = {
        "CAIRN_DATABASE_URL": runtime.settings.database_url,
        "CAIRN_SECRET_KEY": SECRET_KEY,
        "CAIRN_DATA_DIR": runtime.settings.data_dir,
    }
    return CliRunner().invoke(main, ["projections", *args], env=env, catch_exceptions=False)


def test_a_rebuild_of_the_clients_view_reproduces_recorded_uses(auth, runtime):
    now = utcnow()
    auth.create_client("team/ci", "CI", EXPIRES, [], False)
    auth.create_client("team/gone", "", EXPIRES, [], False)
    auth.record_client_use("team/ci", now + timedelta(hours=7))
    auth.update_client("team/ci", "CI bot", EXPIRES, None, False)
    auth.record_client_use("team/ci", now + timedelta(hours=14))
    auth.record_client_use("team/gone", now + timedelta(hours=7))
    auth.delete_client("team/gone")
    auth.create_client("team/gone", "again", EXPIRES, [], False)  # a new life: used never
    rows = {c: auth_views.get_client(runtime.store, c) for c in ("team/ci", "team/gone")}
    assert rows["team/ci"]["last_date_used"] == iso(now + timedelta(hours=14))
    assert rows["team/gone"]["last_date_used"] == rows["team/gone"]["created"]

    verified = projections(runtime, "verify", "auth")
    assert verified.exit_code == 0, verified.output
    with runtime.store.unit_of_work() as session:
        session.execute_sql("UPDATE clients SET last_date_used = created WHERE client_id = 'team/ci'")
    verified = projections(runtime, "verify", "auth")
    assert verified.exit_code == 1 and "last_date_used" in verified.output, verified.output
    assert projections(runtime, "rebuild", "auth").exit_code == 0
    assert projections(runtime, "verify", "auth").exit_code == 0
    assert {c: auth_views.get_client(runtime.store, c) for c in rows} == rows


def test_a_static_clients_scopes_follow_the_roles_it_assumes(auth, runtime):
    cache = runtime.auth_cache
    cache.static_clients["static/team-bot"] = StaticClient("static/team-bot", "a-token", ("assume:team-bot",))
    auth.create_role("team-bot", "", ["queue:create-task:a/*"])
    first = cache.lookup_client("static/team-bot")
    assert "queue:create-task:a/*" in first.scopes
    assert cache.lookup_client("static/team-bot") is first  # expanded once, while the roles stay as they are

    auth.update_role("team-bot", "", ["queue:create-task:b/*"])
    cache.invalidate()
    changed = cache.lookup_client("static/team-bot")
    assert "queue:create-task:b/*" in changed.scopes
    assert "queue:create-task:a/*" not in changed.scopes


def test_a_check_of_the_auth_epoch_keeps_other_requests_waiting_only_after_a_change_here(auth, runtime, monkeypatch):
    cache = runtime.auth_cache
    auth.create_client("team/ci", "CI", EXPIRES, ["a"], False)
    loaded = cache.lookup_client("team/ci")
    checking, release = threading.Event(), threading.Event()
    store = cache.store

    class SlowStore:
        @contextmanager
        def reading(self):
            checking.set()
            assert release.wait(10), "the check was never let go"
            with store.reading() as session:
                yield session

    monkeypatch.setattr(cache, "store", SlowStore())
    monkeypatch.setattr(cache, "refresh_interval", 0.0)  # every lookup finds the interval up

    def lookups_while_one_checks() -> tuple[threading.Thread, threading.Thread, list]:
        found: list = []
        checker = threading.Thread(target=lambda: found.append(("checker", cache.lookup_client("team/ci"))))
        checker.start()
        assert checking.wait(10)
        other = threading.Thread(target=lambda: found.append(("other", cache.lookup_client("team/ci"))))
        other.start()
        return checker, other, found

    # The interval is up: the request that checks waits for the database; another goes on meanwhile.
    checker, other, found = lookups_while_one_checks()
    other.join(10)
    assert not other.is_alive() and found == [("other", loaded)]
    assert checker.is_alive()
    release.set()
    checker.join(10)
    assert found[-1][0] == "checker" and found[-1][1].scopes == ["a"]

    # After a change made by this process, every request waits for the check.
    checking.clear()
    release.clear()
    cache.invalidate()
    checker, other, found = lookups_while_one_checks()
    other.join(0.3)
    assert other.is_alive(), "a request went on with what the change made stale"
    release.set()
    checker.join(10)
    other.join(10)
    assert sorted(who for who, _ in found) == ["checker", "other"]
