"""The secrets service through the official client: round trip, expiry, scopes, and no value at rest."""

from __future__ import annotations

import datetime as dt
import time

import pytest
import taskcluster
from taskcluster.exceptions import TaskclusterRestFailure

from cairn.domain.aggregate import acting_as
from tests.acceptance.hooks_helpers import raw_event_rows

VALUE = "s3cr3t-value-for-the-secrets-test-7f1c"


def in_seconds(seconds: float) -> str:
    return taskcluster.stringDate(dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=seconds))


def test_a_secret_round_trips_lists_and_is_removed(server):
    secrets = server.client("secrets")
    expires = "2099-01-01T00:00:00.000Z"
    secrets.set("project/app/db", {"secret": {"password": VALUE, "n": 1}, "expires": expires})
    got = secrets.get("project/app/db")
    assert got["secret"] == {"password": VALUE, "n": 1}
    assert got["expires"] == expires

    secrets.set("project/app/db", {"secret": {"password": "other"}, "expires": expires})
    assert secrets.get("project/app/db")["secret"] == {"password": "other"}
    secrets.set("project/app/api", {"secret": {}, "expires": expires})
    assert secrets.list()["secrets"] == ["project/app/api", "project/app/db"]
    first = secrets.list(query={"limit": 1})
    assert first["secrets"] == ["project/app/api"]
    assert secrets.list(query={"limit": 1, "continuationToken": first["continuationToken"]})["secrets"] == [
        "project/app/db"
    ]

    secrets.remove("project/app/db")
    with pytest.raises(TaskclusterRestFailure) as missing:
        secrets.get("project/app/db")
    assert missing.value.status_code == 404
    assert secrets.list()["secrets"] == ["project/app/api"]
    secrets.remove("project/app/db")  # removing again changes nothing


def test_an_expired_secret_is_gone_with_410_and_its_expiry_is_an_event(server):
    secrets = server.client("secrets")
    expiry = time.time() + 3
    secrets.set("short-lived", {"secret": {"v": VALUE}, "expires": in_seconds(3)})
    assert secrets.get("short-lived")["secret"] == {"v": VALUE}
    time.sleep(max(0.0, expiry - time.time()) + 0.1)
    with pytest.raises(TaskclusterRestFailure) as expired:
        secrets.get("short-lived")
    assert expired.value.status_code == 410
    assert expired.value.body["code"] == "ResourceExpired"
    assert secrets.list()["secrets"] == []

    with acting_as("cairn/reaper"):
        assert server.runtime.hooks_and_secrets.expire_secrets(dt.datetime.now(dt.timezone.utc)) == 1
    with pytest.raises(TaskclusterRestFailure) as still:
        secrets.get("short-lived")
    assert still.value.status_code == 410
    history = server.runtime.log.recorder.select_events("secret/short-lived")
    assert [e.topic.rsplit(".", 1)[1] for e in history] == ["Created", "Expired"]


def test_secrets_are_refused_without_their_scopes(server):
    root = server.client("secrets")
    expires = taskcluster.stringDate(taskcluster.fromNow("1 day"))
    root.set("team-a/key", {"secret": {"v": 1}, "expires": expires})
    root.set("team-b/key", {"secret": {"v": 2}, "expires": expires})
    token = server.client("auth").createClient(
        "test/reader", {"description": "reads team a", "expires": expires, "scopes": ["secrets:get:team-a/*"]}
    )["accessToken"]
    reader = server.client("secrets", client_id="test/reader", access_token=token)

    assert reader.get("team-a/key")["secret"] == {"v": 1}
    for call in (lambda: reader.get("team-b/key"), lambda: reader.set("team-a/key", {"secret": {}, "expires": expires}),
                 lambda: reader.remove("team-a/key"), reader.list):
        with pytest.raises(TaskclusterRestFailure) as refused:
            call()
        assert refused.value.status_code == 403
        assert refused.value.body["code"] == "InsufficientScopes"
    assert root.get("team-a/key")["secret"] == {"v": 1}


def test_no_secret_value_is_stored_or_shown(server):
    secrets = server.client("secrets")
    expires = taskcluster.stringDate(taskcluster.fromNow("1 day"))
    secrets.set("leak-check", {"secret": {"token": VALUE}, "expires": expires})
    secrets.remove("leak-check")
    rows = raw_event_rows(server.runtime)
    assert any(b"leak-check" in row for row in rows)
    assert not any(VALUE.encode() in row for row in rows)
