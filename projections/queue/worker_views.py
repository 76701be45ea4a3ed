"""What the queue knows about task queues and workers, folded from events.

Nobody creates a task queue or a worker: they become known by being used.

- a task defined on a queue makes the queue known, for five days;
- a run claimed makes its worker known and active, and the queue active,
  for a day; a reclaim keeps both alive; the run joins the worker's latest
  20 (``recentTasks``) and the queue's claimed runs until it is resolved;
- a worker declared (``Worker.Declared``) is known until the time it gave;
- a worker quarantined (``Worker.Quarantined``) records the change in its
  history and is kept at least a day from then.

Provisioners and worker types are the two halves of task queue ids, so they
are read from the task queues. Expiry and activity only move forward, and
— as in Taskcluster, whose ``lastDateActive`` is "refreshed at most every half
hour" — a busy queue's row is rewritten only when it has fallen half an hour
behind, so claims and creations on one queue do not rewrite it every time.
These writes go in log order, under the log's lock, so that a rebuild
throttles them exactly as they were.
Expired rows are never shown; a quarantined worker is shown until its
quarantine ends, even past its expiry.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import orjson

from cairn.domain.queue.task import Task
from cairn.domain.queue.task_queue_id import TaskQueueId
from cairn.domain.queue.worker import Worker, split_worker_key
from cairn.domain.timestamps import iso, parse_time
from cairn.projections.projection import Projection
from cairn.projections.read_model import ReadModel
from cairn.projections.store.session import SqlSession

QUEUE_LIFETIME = timedelta(days=5)
WORKER_LIFETIME = timedelta(days=1)
REFRESH = timedelta(minutes=30)
RECENT_TASKS = 20


class WorkerViews(Projection):
    name = "workers"
    tables = ("task_queues", "queue_workers", "worker_recent_tasks", "claimed_runs")
    ordinal_columns = {"worker_recent_tasks": ("seq",)}
    #: A claimed run's row is removed by run when it is resolved (no other
    #: statement here adds any): a rebuild need not make one that is gone
    #: again before anything else touches its table (``projections/rebuild/staging.py``).
    short_lived = {"insert_claimed_run": ("delete_claimed_run", ("task_id", "run_id"))}
    #: Only a claim recorded before ``RunClaimed`` carried its task queue
    #: needs the task: a rebuild of these views folds no aggregates otherwise.
    aggregates_read_by = frozenset({Task.RunClaimed})

    def reads_aggregate(self, event: Any) -> bool:
        return "task_queue_id" not in event.__dict__

    def register(self) -> None:
        self.on(Task.Defined, self.task_defined)
        self.on(Task.RunClaimed, self.run_claimed)
        self.on(Task.RunReclaimed, self.run_reclaimed)
        self.on(Task.RunResolved, self.run_resolved)
        self.on(Task.Expired, self.task_expired)
        self.on(Worker.Quarantined, self.worker_quarantined)
        self.on(Worker.Declared, self.worker_declared)

    def task_defined(self, session: SqlSession, e: Any, _: Any) -> None:
        now = e.timestamp
        queue_seen(session, e.definition["taskQueueId"], seen_times(now + QUEUE_LIFETIME, None, now))

    def run_claimed(self, session: SqlSession, e: Any, task: Any) -> None:
        task_id = e.originator_id.removeprefix("task/")
        queue_id = e.__dict__.get("task_queue_id") or _task_queue_of(session, task_id, task)
        if queue_id is None:
            return
        now = parse_time(e.started)
        worker = {"task_queue_id": queue_id, "worker_group": e.worker_group, "worker_id": e.worker_id}
        times = seen_times(now + WORKER_LIFETIME, now, now)
        queue_seen(session, queue_id, times)
        worker_seen(session, worker, times)
        recent = {**worker, "task_id": task_id, "run_id": e.run_id}
        session.run_in_log_order("prune_worker_recent_tasks", worker)
        session.run_in_log_order("insert_worker_recent_task", recent)
        session.run(
            "insert_claimed_run",
            {**worker, "task_id": task_id, "run_id": e.run_id, "claimed": e.started},
        )

    def run_reclaimed(self, session: SqlSession, e: Any, task: Any) -> None:
        task_id = e.originator_id.removeprefix("task/")
        claim = session.one("get_claimed_run", {"task_id": task_id, "run_id": e.run_id})
        if claim is None:
            return
        now = e.timestamp
        worker = {k: claim[k] for k in ("task_queue_id", "worker_group", "worker_id")}
        times = seen_times(now + WORKER_LIFETIME, now, now)
        queue_seen(session, claim["task_queue_id"], times)
        worker_seen(session, worker, times)

    def run_resolved(self, session: SqlSession, e: Any, _: Any) -> None:
        session.run(
            "delete_claimed_run", {"task_id": e.originator_id.removeprefix("task/"), "run_id": e.run_id}
        )

    def task_expired(self, session: SqlSession, e: Any, _: Any) -> None:
        session.run("delete_claimed_runs_of", {"task_id": e.originator_id.removeprefix("task/")})

    def worker_quarantined(self, session: SqlSession, e: Any, _: Any) -> None:
        queue_id, group, worker_id = split_worker_key(e.originator_id)
        worker = {"task_queue_id": queue_id, "worker_group": group, "worker_id": worker_id}
        row = session.one("get_queue_worker_row", worker)
        if row is None:
            return
        details = orjson.loads(row["quarantine_details"])
        details.append(
            {
                "clientId": e.actor,
                "updatedAt": iso(e.timestamp),
                "quarantineUntil": e.until,
                "quarantineInfo": e.reason or "[unspecified]",
            }
        )
        session.run(
            "quarantine_queue_worker",
            {
                **worker,
                "quarantine_until": e.until,
                "quarantine_details": orjson.dumps(details).decode(),
                "expires": iso(e.timestamp + WORKER_LIFETIME),
            },
        )

    def worker_declared(self, session: SqlSession, e: Any, _: Any) -> None:
        queue_id, group, worker_id = split_worker_key(e.originator_id)
        worker = {"task_queue_id": queue_id, "worker_group": group, "worker_id": worker_id}
        # Declaring is explicit: it always writes, unthrottled.
        times = seen_times(e.expires, e.timestamp, e.timestamp, timedelta(0))
        queue_seen(session, queue_id, times)
        worker_seen(session, worker, times)


def seen_times(
    expires: datetime | str, active: datetime | None, now: datetime, refresh: timedelta = REFRESH
) -> dict[str, str | None]:
    """What a row is moved forward to — its expiry and its activity (``active``: a worker used it then,
    else ``now``) — and the bounds at or below which a row's are ``refresh`` behind these.

    Each time is formatted once, for a queue's row and a worker's alike.
    """
    until = parse_time(expires) if isinstance(expires, str) else expires
    return {
        "expires": expires if isinstance(expires, str) else iso(expires),
        "last_date_active": iso(active or now),
        "stale_expires": iso(until - refresh),
        "stale_active": None if active is None else iso(active - refresh),
    }


def queue_seen(session: SqlSession, task_queue_id: str, times: dict[str, str | None]) -> None:
    """Make a task queue known until at least ``times["expires"]`` (``seen_times``).

    A known queue's row is rewritten only once its expiry or its activity
    has fallen ``refresh`` behind: one statement decides and writes.
    """
    queue = TaskQueueId.parse(task_queue_id)
    session.run_in_log_order(
        "task_queue_seen",
        {"task_queue_id": task_queue_id, "provisioner_id": queue.provisioner_id, "worker_type": queue.worker_type,
         **times},
    )


def worker_seen(session: SqlSession, worker: dict[str, str], times: dict[str, str | None]) -> None:
    """Make a worker known, seen at ``times["last_date_active"]`` (``seen_times``, with a worker active)."""
    params = {
        **worker,
        "seen": times["last_date_active"],
        "expires": times["expires"],
        "stale_expires": times["stale_expires"],
        "stale_active": times["stale_active"],
    }
    session.run_in_log_order("queue_worker_seen", params)


def _task_queue_of(session: SqlSession, task_id: str, task: Any) -> str | None:
    if task is not None:
        return task.task_queue_id
    row = session.one("get_task_row", {"task_id": task_id})
    return row["task_queue_id"] if row else None


class WorkerReadModel(ReadModel):
    """The worker views as the API and the worker service read them.

    (claimWork's guard against quarantined workers is the Worker aggregate's
    own rule, applied by the queue service.)
    """

    # WorkerReads, for commands

    def worker_known(self, task_queue_id: str, worker_group: str, worker_id: str) -> bool:
        return self.worker_row(task_queue_id, worker_group, worker_id) is not None

    # reads for the API

    def worker_row(self, task_queue_id: str, worker_group: str, worker_id: str) -> dict[str, Any] | None:
        key = {"task_queue_id": task_queue_id, "worker_group": worker_group, "worker_id": worker_id}
        return self._one("get_queue_worker_row", key)

    def recent_tasks(self, task_queue_id: str, worker_group: str, worker_id: str) -> list[dict[str, Any]]:
        key = {"task_queue_id": task_queue_id, "worker_group": worker_group, "worker_id": worker_id}
        rows = self._rows("worker_recent_tasks", key)
        return [{"taskId": r["task_id"], "runId": int(r["run_id"])} for r in reversed(rows)]

    def provisioners(self, now: datetime, after: str, limit: int) -> list[dict[str, Any]]:
        return self._rows("list_provisioners", {"now": iso(now), "after": after, "limit": limit})

    def provisioner(self, provisioner_id: str, now: datetime) -> dict[str, Any] | None:
        return self._one("get_provisioner", {"provisioner_id": provisioner_id, "now": iso(now)})

    def worker_types(self, provisioner_id: str, now: datetime, after: str, limit: int) -> list[dict[str, Any]]:
        params = {"provisioner_id": provisioner_id, "now": iso(now), "after": after, "limit": limit}
        return self._rows("list_worker_types", params)

    def task_queues(self, now: datetime, after: str, limit: int) -> list[dict[str, Any]]:
        return self._rows("list_task_queues", {"now": iso(now), "after": after, "limit": limit})

    def task_queue(self, task_queue_id: str, now: datetime) -> dict[str, Any] | None:
        return self._one("get_live_task_queue", {"task_queue_id": task_queue_id, "now": iso(now)})

    def workers(
        self, task_queue_id: str, quarantined: str, now: datetime, after: tuple[str, str], limit: int
    ) -> list[dict[str, Any]]:
        params = {
            "task_queue_id": task_queue_id,
            "quarantined": quarantined,
            "now": iso(now),
            "after_group": after[0],
            "after_id": after[1],
            "limit": limit,
        }
        return self._rows("list_queue_workers", params)

    def pending_tasks(self, task_queue_id: str, after: int, limit: int) -> list[dict[str, Any]]:
        return self._rows("list_pending_tasks", {"task_queue_id": task_queue_id, "after": after, "limit": limit})

    def claimed_tasks(self, task_queue_id: str, after: tuple[str, str], limit: int) -> list[dict[str, Any]]:
        params = {
            "task_queue_id": task_queue_id,
            "after_claimed": after[0],
            "after_task_id": after[1],
            "limit": limit,
        }
        return self._rows("list_claimed_tasks", params)
