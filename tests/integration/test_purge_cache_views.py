"""The purge requests view: kept with each event, rebuilt from the log, checked against it."""

from __future__ import annotations

from datetime import timedelta

from cairn.domain.aggregate import acting_as
from cairn.domain.timestamps import iso, utcnow
from tests.integration.test_projection_rebuild import cli


def test_the_view_follows_requests_and_lapses_and_a_rebuild_makes_it_again(runtime):
    now = utcnow()
    parts = runtime.purge_cache
    with acting_as("tests"):
        parts.service.purge("proj/linux", "checkouts", now)
        parts.service.purge("proj/linux", "tooltool", now)
        parts.service.purge("proj/linux", "checkouts", now + timedelta(seconds=5))
        parts.service.purge("proj/mac", "odd/name:with:colons", now)
    with acting_as("cairn/reaper"):
        assert parts.expire_requests(now + timedelta(days=1, seconds=1)) == 2  # the one made again is still open

    rows = parts.reads.all(iso(now), ("", ""), 10)
    assert [(r["worker_pool_id"], r["cache_name"], r["purge_before"]) for r in rows] == [
        ("proj/linux", "checkouts", iso(now + timedelta(seconds=5)))
    ]

    assert cli(runtime, "projections", "verify", "purge-cache").exit_code == 0
    with runtime.store.unit_of_work() as session:
        session.execute_sql("DELETE FROM purge_requests")
    assert cli(runtime, "projections", "verify", "purge-cache").exit_code == 1
    assert cli(runtime, "projections", "rebuild", "purge-cache").exit_code == 0
    assert cli(runtime, "projections", "verify", "purge-cache").exit_code == 0
    assert len(parts.reads.of_pool("proj/linux", iso(now), iso(now))) == 1
