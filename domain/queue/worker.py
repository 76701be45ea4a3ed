"""Workers as the queue knows them: what is said about a worker, not what it did.

What a worker *did* — when it first claimed a task, when it was last active,
which runs it took — already follows from task events, and is folded from
them in a view (``projections/queue/worker_views.py``). What someone *says* about a
worker is a change of its own, recorded here: an operator quarantines it
(until a time, for a reason), or the worker declares itself with an expiry.

A quarantined worker stays up but claims nothing until its quarantine ends;
quarantining until now or a past time lifts it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from eventsourcing.domain import event

from cairn.domain.aggregate import CairnAggregate
from cairn.domain.timestamps import iso, parse_time


def worker_key(task_queue_id: str, worker_group: str, worker_id: str) -> str:
    return f"worker/{task_queue_id}/{worker_group}/{worker_id}"


def split_worker_key(key: str) -> tuple[str, str, str]:
    """``worker/<provisionerId>/<workerType>/<group>/<id>`` → (taskQueueId, group, id)."""
    task_queue_id, worker_group, worker_id = key.removeprefix("worker/").rsplit("/", 2)
    return task_queue_id, worker_group, worker_id


class Worker(CairnAggregate):
    @staticmethod
    def create_id(task_queue_id: str, worker_group: str, worker_id: str, **_: Any) -> str:
        return worker_key(task_queue_id, worker_group, worker_id)

    @event("Created")
    def __init__(self, task_queue_id: str, worker_group: str, worker_id: str) -> None:
        self.task_queue_id = task_queue_id
        self.worker_group = worker_group
        self.worker_id = worker_id
        self.quarantine_until: str | None = None
        self.expires: str | None = None

    def quarantined_at(self, now: datetime) -> bool:
        return self.quarantine_until is not None and parse_time(self.quarantine_until) > now

    def quarantine(self, until: datetime, reason: str) -> None:
        """Claim nothing until ``until``; a time not in the future lifts the quarantine."""
        self._quarantined(until=iso(until), reason=reason)

    @event("Quarantined")
    def _quarantined(self, until: str, reason: str) -> None:
        self.quarantine_until = until

    def declare(self, expires: datetime) -> None:
        """The worker says it exists, and may be forgotten after ``expires``."""
        self._declared(expires=iso(expires))

    @event("Declared")
    def _declared(self, expires: str) -> None:
        if self.expires is None or expires > self.expires:
            self.expires = expires
