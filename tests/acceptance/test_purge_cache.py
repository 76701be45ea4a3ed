"""The purge-cache service through the official client: requests, lists, scopes, events, messages and lapse."""

from __future__ import annotations

import datetime as dt
import time
import urllib.parse

import pytest
import taskcluster
from taskcluster.exceptions import TaskclusterRestFailure

from cairn.domain.aggregate import acting_as
from tests.acceptance.test_event_stream import read_events

POOL = "proj-build/linux"
EXCHANGE = "exchange/taskcluster-purge-cache/v1/purge-cache"


def _names(response: dict) -> list[tuple[str, str, str]]:
    return [(r["provisionerId"], r["workerType"], r["cacheName"]) for r in response["requests"]]


def test_purge_requests_are_listed_by_pool_and_since_and_moved_when_made_again(server):
    purge = server.client("purgeCache")
    assert purge.ping()["alive"] is True
    before_any = taskcluster.stringDate(dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1))
    assert purge.purgeCache(POOL, {"cacheName": "checkouts"}) is None
    purge.purgeCache(POOL, {"cacheName": "tooltool"})
    purge.purgeCache("other-prov/other-type", {"cacheName": "checkouts"})

    listed = purge.purgeRequests(POOL)
    assert _names(listed) == [("proj-build", "linux", "checkouts"), ("proj-build", "linux", "tooltool")]
    first_before = {r["cacheName"]: r["before"] for r in listed["requests"]}
    assert all(b >= before_any for b in first_before.values())

    time.sleep(0.01)
    middle = taskcluster.stringDate(dt.datetime.now(dt.timezone.utc))
    time.sleep(0.01)
    purge.purgeCache(POOL, {"cacheName": "checkouts"})  # again: its `before` moves to now
    since_middle = purge.purgeRequests(POOL, query={"since": middle})
    assert _names(since_middle) == [("proj-build", "linux", "checkouts")]
    assert since_middle["requests"][0]["before"] > first_before["checkouts"]
    assert _names(purge.purgeRequests("nobody/here")) == []

    everything = purge.allPurgeRequests()
    assert _names(everything) == [
        ("other-prov", "other-type", "checkouts"),
        ("proj-build", "linux", "checkouts"),
        ("proj-build", "linux", "tooltool"),
    ]
    assert "continuationToken" not in everything
    page = purge.allPurgeRequests(query={"limit": 2})
    assert len(page["requests"]) == 2
    rest = purge.allPurgeRequests(query={"limit": 2, "continuationToken": page["continuationToken"]})
    assert _names(page) + _names(rest) == _names(everything)
    assert "continuationToken" not in rest

    history = server.runtime.log.recorder.select_events(f"purge-cache/{POOL}/checkouts")
    assert [(e.topic.rsplit(".", 1)[1]) for e in history] == ["Requested", "RequestedAgain"]


def test_each_request_is_a_message_on_the_event_stream(server):
    purge = server.client("purgeCache")
    purge.purgeCache(POOL, {"cacheName": "checkouts"})
    purge.purgeCache(POOL, {"cacheName": "checkouts"})
    query = "?" + urllib.parse.urlencode(
        {"exchange": EXCHANGE, "routingKey": "primary.proj-build.linux", "from": "0"}
    )
    events = read_events(server, 2, query)
    befores = [r["before"] for r in purge.purgeRequests(POOL)["requests"]]
    assert [e["data"]["routingKey"] for e in events] == ["primary.proj-build.linux"] * 2
    payloads = [e["data"]["payload"] for e in events]
    assert payloads[1] == {
        "version": 1, "provisionerId": "proj-build", "workerType": "linux", "cacheName": "checkouts",
        "before": befores[0],
    }
    assert payloads[0]["before"] < payloads[1]["before"]


def test_purge_requests_need_their_scopes(server):
    expires = taskcluster.stringDate(taskcluster.fromNow("1 day"))
    token = server.client("auth").createClient("test/purger", {
        "description": "purges one cache", "expires": expires,
        "scopes": [f"purge-cache:{POOL}:checkouts", f"purge-cache:purge-requests::{POOL}"],
    })["accessToken"]
    purger = server.client("purgeCache", client_id="test/purger", access_token=token)

    purger.purgeCache(POOL, {"cacheName": "checkouts"})
    assert _names(purger.purgeRequests(POOL)) == [("proj-build", "linux", "checkouts")]
    for call in (
        lambda: purger.purgeCache(POOL, {"cacheName": "tooltool"}),
        lambda: purger.purgeCache("proj-build/mac", {"cacheName": "checkouts"}),
        lambda: purger.purgeRequests("proj-build/mac"),
        purger.allPurgeRequests,
    ):
        with pytest.raises(TaskclusterRestFailure) as refused:
            call()
        assert refused.value.status_code == 403
        assert refused.value.body["code"] == "InsufficientScopes"
    assert _names(server.client("purgeCache").allPurgeRequests()) == [("proj-build", "linux", "checkouts")]


def test_bad_requests_are_refused_and_change_nothing(server):
    purge = server.client("purgeCache")
    cases = [
        (lambda: purge.purgeCache("no-slash-here", {"cacheName": "x"}), 400, "InvalidRequestArguments"),
        (lambda: purge.purgeCache("a/b/c", {"cacheName": "x"}), 400, "InvalidRequestArguments"),
        (lambda: purge.purgeCache(POOL, {"cacheName": 7}), 400, "InputValidationError"),
        (lambda: purge.purgeCache(POOL, {"name": "x"}), 400, "InputValidationError"),
        (lambda: purge.purgeRequests(POOL, query={"since": "yesterday"}), 400, "InvalidRequestArguments"),
        (lambda: purge.allPurgeRequests(query={"limit": "0"}), 400, "InvalidRequestArguments"),
    ]
    for call, status, code in cases:
        with pytest.raises(TaskclusterRestFailure) as refused:
            call()
        assert (refused.value.status_code, refused.value.body["code"]) == (status, code)
        assert set(refused.value.body) >= {"code", "message", "requestInfo"}
    assert purge.allPurgeRequests()["requests"] == []


def test_a_request_lapses_after_a_day_as_an_event(server):
    purge = server.client("purgeCache")
    purge.purgeCache(POOL, {"cacheName": "checkouts"})
    with acting_as("cairn/reaper"):
        now = dt.datetime.now(dt.timezone.utc)
        assert server.runtime.purge_cache.expire_requests(now) == 0
        assert server.runtime.purge_cache.expire_requests(now + dt.timedelta(days=1, minutes=1)) == 1
    assert purge.purgeRequests(POOL)["requests"] == []
    assert purge.allPurgeRequests()["requests"] == []
    purge.purgeCache(POOL, {"cacheName": "checkouts"})  # asked again: the same history goes on
    assert _names(purge.purgeRequests(POOL)) == [("proj-build", "linux", "checkouts")]
    history = server.runtime.log.recorder.select_events(f"purge-cache/{POOL}/checkouts")
    assert [e.topic.rsplit(".", 1)[1] for e in history] == ["Requested", "Expired", "RequestedAgain"]
