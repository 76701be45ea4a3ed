"""Events a consumer could not process: retried a few times, then set aside with the reason.

A consumer never stops on one bad event. When handling an event keeps
failing, the follower retries it ``RetryPolicy.attempts`` times with a
growing pause, then writes a *dead letter* — the consumer's name, the log
position, the event's id (originator and version) and type, the reason —
moves its position past the event, and goes on with the next one.

A dead letter is a row in ``dead_letters``, not an event in the log, for
three reasons. It is a fact about one consumer's code meeting one event, not
a change of anything the domain knows: a fixed consumer replaying the same
event would succeed, and a rebuild must not inherit the failure. It is
written in the same transaction that moves the consumer's position past the
event, as the position itself is (``consumer_positions``), so a crash keeps
both or neither — an append to the log would take the log's write lock for
bookkeeping. And a consumer that followed the log would read its own
failures back as events. The event itself stays in the log, untouched:
``cairn history`` shows it, and moving the consumer's position back retries it.

Operators see dead letters in ``cairn projections list``; metrics read
:func:`dead_letter_counts`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cairn.domain.timestamps import iso, utcnow

#: How much of an exception's text a dead letter keeps.
REASON_LIMIT = 500


@dataclass(frozen=True)
class RetryPolicy:
    """How often an event is tried before it is set aside, and the pauses between tries."""

    attempts: int = 3
    first_pause: float = 0.2
    growth: float = 2.0

    def pauses(self) -> list[float]:
        return [self.first_pause * self.growth**n for n in range(self.attempts - 1)]


@dataclass(frozen=True)
class DeadLetter:
    consumer: str
    position: int
    originator_id: str
    originator_version: int
    event_type: str
    reason: str
    attempts: int
    failed_at: str


def describe(error: BaseException) -> str:
    text = f"{type(error).__name__}: {error}"
    return text if len(text) <= REASON_LIMIT else text[: REASON_LIMIT - 1] + "…"


def record_dead_letter(session: Any, consumer: str, position: int, event: Any, error: BaseException, attempts: int) -> None:
    """Write the dead letter in ``session``, the transaction that moves the consumer past it."""
    record(session, consumer, position, event.originator_id, event.originator_version, type(event).__qualname__, error, attempts)


def record(
    session: Any, consumer: str, position: int, originator_id: Any, originator_version: int, event_type: str,
    error: BaseException, attempts: int,
) -> None:
    """As :func:`record_dead_letter`, for an event known only by its stored fields (one that cannot be decoded)."""
    session.run(
        "insert_dead_letter",
        {
            "consumer": consumer,
            "position": position,
            "originator_id": str(originator_id),
            "originator_version": int(originator_version),
            "event_type": event_type,
            "reason": describe(error),
            "attempts": attempts,
            "failed_at": iso(utcnow()),
        },
    )


def dead_letters(store: Any, consumer: str | None = None) -> list[DeadLetter]:
    """Every event set aside (by ``consumer`` only, if given), by consumer and position."""
    with store.reading() as session:
        rows = session.rows("list_dead_letters", {})
    letters = [DeadLetter(**{k: row[k] for k in DeadLetter.__dataclass_fields__}) for row in rows]
    return [d for d in letters if consumer is None or d.consumer == consumer]


def dead_letter_counts(store: Any) -> dict[str, int]:
    """How many events each consumer has set aside: for metrics and `cairn projections list`."""
    with store.reading() as session:
        return {row["consumer"]: int(row["n"]) for row in session.rows("count_dead_letters", {})}
