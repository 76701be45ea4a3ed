"""Hook schedules: Taskcluster's cron patterns, six fields with seconds first, in UTC.

Parsed by croniter, configured for seconds first. A hook with several
patterns is due at the earliest time any of them gives.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone

from croniter import croniter

from cairn.domain.errors import InvalidInput


def check_schedule(patterns: Sequence[str]) -> None:
    for pattern in patterns:
        if not croniter.is_valid(pattern, second_at_beginning=True):
            raise InvalidInput(f"{pattern!r} is not a cron pattern (six fields, seconds first) in schedule")


def next_due(patterns: Sequence[str], after: datetime) -> datetime | None:
    """The first time after ``after`` that any pattern gives; None with no patterns."""
    after = after.astimezone(timezone.utc)
    times = [croniter(p, after, second_at_beginning=True).get_next(datetime) for p in patterns]
    return min(times) if times else None
