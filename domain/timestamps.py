"""Times as Taskcluster writes them: ISO 8601, UTC, milliseconds, ``Z``.

This is the one date type of the code base. :func:`is_date_time` is the
``date-time`` format of every schema, so whatever a schema lets in,
:func:`parse_time` reads and :func:`iso` writes back:

- the letters ``T`` and ``Z`` in either case, any number of fractional
  digits, any offset from ``-23:59`` to ``+23:59``;
- any calendar date of years 0001–9999 in the writer's own zone. Python's
  dates end at 0001-01-01 and 9999-12-31 (UTC), so a moment beyond them
  once moved to UTC (``9999-12-31T23:00:00-05:00``) is clamped to the
  nearest representable millisecond, ``FIRST`` or ``LAST``. Taskcluster
  stores dates in PostgreSQL, which goes further; nothing Cairn does with a
  date that far away tells the two apart.

Arithmetic on dates goes through :func:`shift`, which clamps the same way,
so that no sum of a date and a duration can overflow.
"""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta, timezone

import orjson

FIRST = datetime(1, 1, 1, tzinfo=timezone.utc)
LAST = datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=timezone.utc)

_DATE_TIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))\Z"
)

#: Exactly what ``iso`` writes (ASCII digits, UTC, milliseconds, ``Z``).
_AS_WRITTEN = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z\Z", re.ASCII)


_dumps, _UTC_Z = orjson.dumps, orjson.OPT_UTC_Z


def _fields(text: str) -> tuple[datetime, timedelta]:
    """The wall-clock time written and the writer's offset from UTC; ValueError if not a date-time."""
    found = _DATE_TIME.match(text)
    if found is None:
        raise ValueError(f"not an ISO 8601 date-time: {text[:64]!r}")
    year, month, day, hour, minute, second, fraction, _, sign, off_h, off_m = found.groups()
    wall = datetime(
        int(year), int(month), int(day), int(hour), int(minute), int(second),
        int((fraction or "0")[:6].ljust(6, "0")),
    )
    if int(off_h or 0) > 23 or int(off_m or 0) > 59:
        raise ValueError(f"offset out of range in {text[:64]!r}")
    offset = timedelta(hours=int(off_h or 0), minutes=int(off_m or 0))
    return wall, -offset if sign == "-" else offset


def is_date_time(value: str) -> bool:
    """Whether ``value`` is a date-time as the schemas' ``date-time`` format means it."""
    try:
        _fields(value)
    except ValueError:
        return False
    return True


def parse_time(text: str) -> datetime:
    """The moment ``text`` names, in UTC, clamped to ``FIRST``…``LAST``; ValueError if not a date-time."""
    if _AS_WRITTEN.match(text):
        # What ``iso`` writes, read back by the standard library in a tenth
        # of the time; anything it does not take (a 13th month) goes on to
        # the full parse, which says why.
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            pass
    wall, offset = _fields(text)
    try:
        moment = wall - offset
    except OverflowError:
        return FIRST if offset > timedelta(0) else LAST
    return min(max(moment.replace(tzinfo=timezone.utc), FIRST), LAST)


def iso(moment: datetime) -> str:
    if moment.tzinfo is timezone.utc:  # the common case: within FIRST…LAST
        # orjson writes RFC 3339 about five times faster than ``isoformat``
        # (a rebuild formats millions): microseconds, left out when zero.
        text = _dumps(moment, option=_UTC_Z)  # b'"2026-01-02T03:04:05[.123456]Z"'
        if len(text) == 29:
            return (text[1:24] + b"Z").decode()
        return (text[1:20] + b".000Z").decode()
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    moment = min(max(moment, FIRST), LAST)
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def normalized(text: str) -> str:
    """``text`` as Cairn writes it: UTC, milliseconds, ``Z``."""
    return iso(parse_time(text))


def shift(moment: datetime, delta: timedelta) -> datetime:
    """``moment + delta``, clamped to ``FIRST``…``LAST`` instead of overflowing."""
    try:
        return min(max(moment + delta, FIRST), LAST)
    except OverflowError:
        return LAST if delta > timedelta(0) else FIRST


def next_midnight(moment: datetime) -> datetime:
    """The midnight (UTC) after ``moment``, or ``LAST`` on the last day there is."""
    moment = moment.astimezone(timezone.utc)
    return shift(datetime.combine(moment.date(), time(), timezone.utc), timedelta(days=1))


def utcnow() -> datetime:
    return datetime.now(timezone.utc)
