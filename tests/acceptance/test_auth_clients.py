"""Clients through the official taskcluster client: created, used, changed, disabled, deleted."""

from __future__ import annotations

import datetime
import time
import uuid

import pytest
import taskcluster
from taskcluster.exceptions import TaskclusterAuthFailure, TaskclusterRestFailure

from tests.acceptance.test_auth_history import cairn_auth
from tests.acceptance.test_event_stream import read_events


def new_client(server, scopes=(), expires="1 hour", **fields):
    """A fresh client made by root: (clientId, the create response)."""
    client_id = f"test/{uuid.uuid4().hex[:10]}"
    body = {"description": "made by a test", "expires": taskcluster.fromNow(expires), "scopes": list(scopes)}
    created = server.client("auth").createClient(client_id, {**body, **fields})
    return client_id, created


def as_client(server, client_id, access_token, **options):
    return server.client("auth", client_id=client_id, access_token=access_token, **options)


def error_of(call, *args):
    with pytest.raises((TaskclusterRestFailure, TaskclusterAuthFailure)) as failure:
        call(*args)
    return failure.value


def test_a_new_client_calls_with_its_token_until_the_token_is_reset(server):
    client_id, created = new_client(server, ["auth:current-scopes", "thing:a"])
    assert created["clientId"] == client_id
    assert created["scopes"] == ["auth:current-scopes", "thing:a"]
    assert created["expandedScopes"] == ["auth:current-scopes", "thing:a"]
    assert created["disabled"] is False
    assert created["expires"].endswith("Z") and len(created["expires"]) == 24

    auth = as_client(server, client_id, created["accessToken"])
    assert "thing:a" in auth.currentScopes()["scopes"]

    fetched = server.client("auth").client(client_id)
    assert "accessToken" not in fetched
    assert fetched["description"] == "made by a test"
    assert fetched["created"] == created["created"]

    # A reset token replaces the old one.
    reset = server.client("auth").resetAccessToken(client_id)
    assert reset["accessToken"] != created["accessToken"]
    assert as_client(server, client_id, reset["accessToken"]).currentScopes()["scopes"]
    refused = error_of(as_client(server, client_id, created["accessToken"]).currentScopes)
    assert refused.status_code == 401
    assert refused.body["code"] == "AuthenticationFailed"

    # Times are returned with milliseconds, in UTC.
    expires = datetime.datetime(2031, 2, 3, 4, 5, 6, 789123, tzinfo=datetime.timezone.utc)
    precise = server.client("auth").createClient("test/ms", {"description": "x", "expires": expires})
    assert precise["expires"] == "2031-02-03T04:05:06.789Z"


def test_updated_scopes_apply_to_the_next_call(server):
    client_id, created = new_client(server, ["auth:current-scopes"])
    auth = as_client(server, client_id, created["accessToken"])
    assert error_of(auth.listClients).status_code == 403

    root = server.client("auth")
    scopes = ["auth:current-scopes", "auth:list-clients"]
    updated = root.updateClient(
        client_id, {"description": "now lists clients", "expires": created["expires"], "scopes": scopes}
    )
    assert updated["scopes"] == ["auth:current-scopes", "auth:list-clients"]
    assert updated["lastModified"] >= updated["lastRotated"]
    assert any(c["clientId"] == client_id for c in auth.listClients()["clients"])

    # Without `scopes` the client keeps its scopes.
    kept = root.updateClient(client_id, {"description": "again", "expires": created["expires"]})
    assert kept["scopes"] == ["auth:current-scopes", "auth:list-clients"]
    assert kept["description"] == "again"

    # The caller needs only the scopes an update adds: keeping a scope it
    # lacks is allowed, and so is dropping one.
    owner_id, owner = new_client(server, ["auth:update-client:test/*", "thing:a"])
    target_id, target = new_client(server, ["thing:secret", "thing:a"])
    owner_auth = as_client(server, owner_id, owner["accessToken"])
    body = {"description": "x", "expires": target["expires"]}
    narrower = owner_auth.updateClient(target_id, {**body, "scopes": ["thing:secret"]})
    assert narrower["scopes"] == ["thing:secret"]
    refused = error_of(owner_auth.updateClient, target_id, {**body, "scopes": ["thing:secret", "thing:b"]})
    assert refused.status_code == 403
    assert "thing:b" in refused.body["message"]


def test_disabled_deleted_and_expired_clients_are_refused(server):
    client_id, created = new_client(server, ["auth:current-scopes"])
    auth = as_client(server, client_id, created["accessToken"])
    root = server.client("auth")

    assert root.disableClient(client_id)["disabled"] is True
    assert root.disableClient(client_id)["disabled"] is True  # already disabled: no change
    assert error_of(auth.currentScopes).status_code == 401

    assert root.enableClient(client_id)["disabled"] is False
    assert auth.currentScopes()["scopes"]

    client_id, created = new_client(server, ["auth:current-scopes"])
    assert root.deleteClient(client_id) is None
    assert error_of(as_client(server, client_id, created["accessToken"]).currentScopes).status_code == 401
    missing = error_of(root.client, client_id)
    assert missing.status_code == 404
    assert missing.body["code"] == "ResourceNotFound"
    assert root.deleteClient(client_id) is None  # deleting what is not there succeeds
    assert error_of(root.resetAccessToken, client_id).status_code == 404

    client_id, created = new_client(server, ["auth:current-scopes"], expires="-1 minute")
    refused = error_of(as_client(server, client_id, created["accessToken"]).currentScopes)
    assert refused.status_code == 401
    assert "expired" in refused.body["message"]


def test_a_client_is_refused_what_its_scopes_do_not_cover(server):
    client_id, created = new_client(server, ["auth:create-client:test/*", "thing:a"])
    auth = as_client(server, client_id, created["accessToken"])
    expires = taskcluster.fromNow("1 hour")

    too_much = {"description": "x", "expires": expires, "scopes": ["thing:b"]}
    refused = error_of(auth.createClient, "test/too-much", too_much)
    assert refused.status_code == 403
    assert "thing:b" in refused.body["message"]
    assert error_of(server.client("auth").client, "test/too-much").status_code == 404

    child = auth.createClient("test/child", {"description": "x", "expires": expires, "scopes": ["thing:a"]})
    assert child["scopes"] == ["thing:a"]

    refused = error_of(auth.client, "someone-else")
    assert refused.status_code == 403
    assert refused.body["code"] == "InsufficientScopes"
    assert "auth:get-client:someone-else" in refused.body["message"]


def test_create_is_idempotent_but_a_different_body_conflicts(server):
    root = server.client("auth")
    expires = taskcluster.fromNow("1 hour")
    body = {"description": "same", "expires": expires, "scopes": ["thing:a"]}
    first = root.createClient("test/twice", body)
    again = root.createClient("test/twice", body)
    assert again["accessToken"] == first["accessToken"]
    assert again["created"] == first["created"]

    conflict = error_of(root.createClient, "test/twice", {**body, "description": "different"})
    assert conflict.status_code == 409
    assert conflict.body["code"] == "RequestConflict"

    # A deleted client can be created again, with a new token.
    root.deleteClient("test/twice")
    assert root.createClient("test/twice", body)["accessToken"] != first["accessToken"]


def test_static_clients_and_double_star_scopes_are_refused(server):
    root = server.client("auth")
    static = root.client("static/root")
    assert static["scopes"] == ["*"]
    expires = {"description": "x", "expires": taskcluster.fromNow("1 hour")}
    for call, args in [
        (root.createClient, ("static/other", expires)),
        (root.updateClient, ("static/root", expires)),
        (root.resetAccessToken, ("static/root",)),
        (root.disableClient, ("static/root",)),
        (root.deleteClient, ("static/root",)),
    ]:
        refused = error_of(call, *args)
        assert (refused.status_code, refused.body["code"]) == (400, "InputError")

    refused = error_of(root.createClient, "test/stars", {**expires, "scopes": ["a:**"]})
    assert (refused.status_code, refused.body["code"]) == (400, "InputError")


def test_list_clients_by_prefix_and_in_pages(server):
    root = server.client("auth")
    expires = taskcluster.fromNow("1 hour")
    suffixes = ["aa", "bb", "bb/1", "bb/2", "bb/3", "bbbl", "bc/2"]
    for suffix in suffixes:
        root.createClient(f"list/{suffix}", {"description": "x", "expires": expires})

    def ids(result):
        return [c["clientId"].removeprefix("list/") for c in result["clients"]]

    assert ids(root.listClients(query={"prefix": "list/"})) == suffixes
    assert ids(root.listClients(query={"prefix": "list/bb/"})) == ["bb/1", "bb/2", "bb/3"]
    assert ids(root.listClients(query={"prefix": "list/c"})) == []
    assert "static/root" in [c["clientId"] for c in root.listClients()["clients"]]

    seen, query = [], {"prefix": "list/b", "limit": 2}
    while True:
        result = root.listClients(query=query)
        assert len(result["clients"]) <= 2
        seen += ids(result)
        if "continuationToken" not in result:
            break
        query["continuationToken"] = result["continuationToken"]
    assert seen == ["bb", "bb/1", "bb/2", "bb/3", "bbbl", "bc/2"]

    bad = error_of(lambda: root.listClients(query={"continuationToken": "@@not-a-token##"}))
    assert (bad.status_code, bad.body["code"]) == (400, "InvalidRequestArguments")




def last_used(server, client_id):
    return server.client("auth").client(client_id)["lastDateUsed"]


def temporary(client_id, access_token, scopes, name=None):
    start = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=1)
    expiry = start + datetime.timedelta(hours=1)
    return taskcluster.createTemporaryCredentials(client_id, access_token, start, expiry, scopes, name=name)


def auth_messages(server, count):
    """The first ``count`` client-created and client-updated messages since the log began."""
    exchanges = "&".join(f"exchange=exchange/taskcluster-auth/v1/client-{kind}" for kind in ("created", "updated"))
    return read_events(server, count, f"?from=0&{exchanges}")


@pytest.mark.parametrize("settings_overrides", [{"client_last_used_delay": 0.0}])
def test_a_client_is_used_when_its_key_signs_a_request(server):
    root = server.client("auth")
    client_id, created = new_client(server, ["auth:current-scopes", "auth:create-client:test/named-*"])
    assert created["lastDateUsed"] == created["created"]
    assert last_used(server, client_id) == created["created"]

    as_client(server, client_id, created["accessToken"]).currentScopes()
    used = root.client(client_id)
    assert used["lastDateUsed"] > created["created"]
    assert (used["lastModified"], used["created"]) == (created["lastModified"], created["created"])
    listed = root.listClients(query={"prefix": client_id})["clients"]
    assert [c["lastDateUsed"] for c in listed] == [used["lastDateUsed"]]

    # Temporary credentials, named or not, are a use of the client that issued them.
    before = used["lastDateUsed"]
    for name in (None, "test/named-1"):
        issued = temporary(client_id, created["accessToken"], ["auth:current-scopes"], name=name)
        credentials = {"clientId": issued["clientId"], "accessToken": issued["accessToken"],
                       "certificate": issued["certificate"]}
        taskcluster.Auth({"rootUrl": server.root_url, "credentials": credentials, "maxRetries": 0}).currentScopes()
        assert last_used(server, client_id) > before
        before = last_used(server, client_id)

    # A refused request is no use.
    assert error_of(as_client(server, client_id, "not-the-token").currentScopes).status_code == 401
    assert last_used(server, client_id) == before

    # Each use is an event of the client's own, in its history, and announces nothing.
    events = cairn_auth(server).clientHistory(client_id)["events"]
    assert [(e["type"], e["clientId"], e["data"]) for e in events[1:]] == [("ClientUsed", client_id, {})] * 3
    assert events[-1]["time"] == before
    root.updateClient(client_id, {"description": "renamed", "expires": created["expires"],
                                  "scopes": created["scopes"]})
    changed = cairn_auth(server).clientHistory(client_id)["events"][-1]
    messages = auth_messages(server, 2)
    assert [m["data"]["exchange"].rsplit("/", 1)[1] for m in messages] == ["client-created", "client-updated"]
    assert int(messages[1]["id"].split(".")[0]) == changed["position"]


def test_static_clients_record_no_use(server):
    root = server.client("auth")
    root.currentScopes()
    root.currentScopes()
    static = root.client("static/root")
    assert static["lastDateUsed"] == static["created"]
    assert error_of(cairn_auth(server).clientHistory, "static/root").status_code == 404


def test_with_the_default_delay_a_fresh_client_does_not_move_its_last_use(server):
    assert server.runtime.settings.client_last_used_delay == 6 * 3600  # Taskcluster's maxLastUsedDelay
    client_id, created = new_client(server, ["auth:current-scopes"])
    auth = as_client(server, client_id, created["accessToken"])
    auth.currentScopes()
    auth.currentScopes()
    assert last_used(server, client_id) == created["created"]
    assert [e["type"] for e in cairn_auth(server).clientHistory(client_id)["events"]] == ["ClientCreated"]


@pytest.mark.parametrize("settings_overrides", [{"client_last_used_delay": 1.0}])
def test_a_use_within_the_delay_of_the_last_one_is_not_recorded(server):
    client_id, created = new_client(server, ["auth:current-scopes"])
    auth = as_client(server, client_id, created["accessToken"])
    time.sleep(1.1)
    auth.currentScopes()
    moved = last_used(server, client_id)
    assert moved > created["created"]
    auth.currentScopes()
    auth.currentScopes()
    assert last_used(server, client_id) == moved
