"""Temporary credentials the queue hands out: to a claimed run, and for artifact transfers.

They are signed by the queue's own client (the ``issuer``), back-dated a
quarter of an hour for clocks that run behind. A claimed run's credentials
carry the task's scopes and the three that let its worker reclaim, resolve
and add artifacts to that one run; they outlive the claim by five minutes so
that a worker can still report in the moment its claim ends.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

from cairn.domain.auth.credentials import create_temporary_credentials
from cairn.domain.queue.task import Task
from cairn.domain.timestamps import parse_time

CLOCK_SKEW = timedelta(minutes=15)
AFTER_CLAIM = timedelta(minutes=5)


class Issuer(Protocol):
    """A permanent client that signs temporary credentials."""

    @property
    def client_id(self) -> str: ...
    @property
    def access_token(self) -> str: ...


def issue(issuer: Issuer, name: str, expiry: datetime, scopes: list[str], now: datetime) -> dict[str, str]:
    """Temporary credentials named ``name``, valid from a little before ``now`` until ``expiry``."""
    return create_temporary_credentials(
        issuer.client_id, issuer.access_token, now - CLOCK_SKEW, expiry, scopes, name=name
    )


def run_credentials(issuer: Issuer, task: Task, run_id: int, now: datetime) -> dict[str, str]:
    """The credentials of a claimed run, until five minutes after its claim ends."""
    run = task.run(run_id)
    taken_until = parse_time(run["takenUntil"])
    name = (
        f"task-client/{task.task_id}/{run_id}/on/{run['workerGroup']}/{run['workerId']}"
        f"/until/{int(taken_until.timestamp())}"
    )
    scopes = [
        *task.definition["scopes"],
        f"queue:reclaim-task:{task.task_id}/{run_id}",
        f"queue:resolve-task:{task.task_id}/{run_id}",
        f"queue:create-artifact:{task.task_id}/{run_id}",
    ]
    return issue(issuer, name, taken_until + AFTER_CLAIM, scopes, now)
