"""Times as written: ``iso`` against the standard library's own ISO 8601."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from cairn.domain.timestamps import FIRST, LAST, iso, parse_time


def as_isoformat_writes(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@pytest.mark.parametrize(
    "moment",
    [
        FIRST,
        LAST,
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc),  # no fraction at all
        datetime(2026, 1, 2, 3, 4, 5, 999, tzinfo=timezone.utc),  # under a millisecond: cut, not rounded
        datetime(2026, 1, 2, 3, 4, 5, 1000, tzinfo=timezone.utc),
        datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc),
        datetime(999, 3, 4, 5, 6, 7, 8000, tzinfo=timezone.utc),  # a year of three digits
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc),
    ],
)
def test_iso_writes_milliseconds_in_utc_with_a_z(moment):
    assert iso(moment) == as_isoformat_writes(moment)
    assert parse_time(iso(moment)) == moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def test_iso_writes_any_moment_as_isoformat_does():
    rng = random.Random(7)
    span = (LAST - FIRST) // timedelta(microseconds=1)
    for _ in range(20_000):
        moment = FIRST + timedelta(microseconds=rng.randrange(span))
        assert iso(moment) == as_isoformat_writes(moment)


def test_iso_of_other_zones_and_naive_times_is_utc():
    plus_two = timezone(timedelta(hours=2))
    assert iso(datetime(2026, 1, 2, 3, 4, 5, 678900, tzinfo=plus_two)) == "2026-01-02T01:04:05.678Z"
    assert iso(datetime(2026, 1, 2, 3, 4, 5)) == "2026-01-02T03:04:05.000Z"
