"""The index entry as an aggregate: the rank rule, replays, expiry, and what a completion asks for."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from cairn.domain.aggregate import acting_as
from cairn.domain.errors import InvalidInput
from cairn.domain.index.model import IndexedTask, completion_requests, parent_namespaces

NOW = datetime(2030, 1, 1, tzinfo=timezone.utc)
LATER = NOW + timedelta(days=30)


@pytest.fixture(autouse=True)
def actor():
    with acting_as("static/root"):
        yield


def events(aggregate) -> list[str]:
    return [type(e).__name__ for e in aggregate.collect_events()]


def test_a_higher_or_equal_rank_replaces_and_a_lower_one_does_not():
    entry = IndexedTask(namespace="proj.app.latest")
    assert entry.insert("A", 5, {}, LATER, NOW)
    assert not entry.insert("B", 4, {}, LATER, NOW)
    assert entry.insert("C", 5, {}, LATER, NOW)
    assert entry.entry["taskId"] == "C"
    assert not entry.insert("C", 5, {}, LATER, NOW), "the same entry again changes nothing"
    assert events(entry) == ["Created", "Inserted", "Inserted"]


def test_an_expired_entry_counts_as_absent():
    entry = IndexedTask(namespace="a.b")
    entry.insert("A", 100, {}, NOW - timedelta(seconds=1), NOW - timedelta(days=1))
    assert entry.current(NOW) is None
    assert entry.insert("B", 0, {}, LATER, NOW)
    assert not entry.expire(NOW)
    assert entry.expire(LATER)
    assert entry.entry is None


def test_a_replayed_completion_is_ignored():
    entry = IndexedTask(namespace="a.b")
    assert entry.insert("A", 0, {}, LATER, NOW, source_position=10)
    assert entry.delete()
    assert not entry.insert("A", 0, {}, LATER, NOW, source_position=10)
    assert entry.insert("A", 0, {}, LATER, NOW, source_position=11)


def test_bad_entries_are_refused():
    entry = IndexedTask(namespace="a.b")
    with pytest.raises(InvalidInput):
        entry.insert("A", 0, {"x": "y" * 40_000}, LATER, NOW)
    with pytest.raises(InvalidInput):
        IndexedTask(namespace="a" * 256).insert("A", 0, {}, LATER, NOW)
    with pytest.raises(InvalidInput):
        entry.insert("A", True, {}, LATER, NOW)


def test_completion_requests_follow_routes_and_extra_index():
    definition = {
        "routes": ["index.a.latest", "index.a.latest", "index.bad..x", "notify.email.x", "index.b"],
        "expires": "2031-01-01T00:00:00.000Z",
        "extra": {"index": {"rank": 3, "data": {"k": 1}}},
    }
    requests = completion_requests(definition)
    assert [(r.namespace, r.rank, r.data) for r in requests] == [("a.latest", 3, {"k": 1}), ("b", 3, {"k": 1})]
    assert requests[0].expires == datetime(2031, 1, 1, tzinfo=timezone.utc)
    assert completion_requests({**definition, "extra": {"index": {"rank": "high"}}}) == []
    assert completion_requests({**definition, "extra": {"index": {"data": []}}}) == []
    assert completion_requests({"routes": [], "expires": definition["expires"]}) == []


def test_parent_namespaces():
    assert parent_namespaces("a.b.c") == ["a", "a.b"]
    assert parent_namespaces("a") == []
