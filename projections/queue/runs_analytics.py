"""Runs analytics: one row per run of every task, for pandas, DuckDB or a warehouse.

A read-side view: nothing decides a command on it, so it trails the log,
kept by a log follower that commits its rows and its position together
(exactly once) in batches of a thousand events. Each handler returns the
write its event needs and that write's row; a batch then sends each kind
of write as one statement, all its rows in one JSON parameter, in
lifecycle order — task defined, run pending, claimed, resolved — which is
the order any one run goes through them: four statements a batch, not
four a task. The writes also check that the run is where the event leaves
from, so a batch folded twice changes nothing.

Rows stay when their task expires: the log keeps the history, and so does
this view.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from typing import IO, Any

import orjson

from cairn.domain.queue.task import Task
from cairn.domain.timestamps import parse_time
from cairn.projections.projection import FollowedProjection
from cairn.projections.store.session import SqlSession

#: The writes a batch sends, in the order a run's life goes through them.
LIFECYCLE = ("insert_run_tasks", "insert_runs", "claim_runs", "resolve_runs")

#: Exported column name → view column, in export order.
EXPORT_COLUMNS = {
    "taskId": "task_id",
    "runId": "run_id",
    "taskQueueId": "task_queue_id",
    "taskGroupId": "task_group_id",
    "projectId": "project_id",
    "schedulerId": "scheduler_id",
    "state": "state",
    "reasonCreated": "reason_created",
    "reasonResolved": "reason_resolved",
    "workerGroup": "worker_group",
    "workerId": "worker_id",
    "scheduled": "scheduled",
    "started": "started",
    "resolved": "resolved",
    "pendingSeconds": "pending_seconds",
    "runningSeconds": "running_seconds",
    "totalSeconds": "total_seconds",
}
TIME_COLUMNS = ("scheduled", "started", "resolved")
SECONDS_COLUMNS = ("pendingSeconds", "runningSeconds", "totalSeconds")


def _task_id(e: Any) -> str:
    return e.originator_id.removeprefix("task/")


class RunsAnalytics(FollowedProjection):
    name = "runs"
    tables = ("runs", "run_tasks")

    def register(self) -> None:
        self.on(Task.Defined, self.defined)
        self.on(Task.RunPending, self.run_pending)
        self.on(Task.RunClaimed, self.run_claimed)
        self.on(Task.RunResolved, self.run_resolved)
        self.on(Task.UnscheduledResolved, self.unscheduled_resolved)

    def __call__(
        self, session: SqlSession, events: Iterable[Any], aggregates: Mapping[str, Any] | None = None
    ) -> None:
        statements: dict[str, list[dict[str, Any]]] = defaultdict(list)
        handlers = self.handlers
        for e in events:
            handler = handlers.get(type(e))
            if handler is not None:
                name, params = handler(session, e, None)
                statements[name].append(params)
        for name in LIFECYCLE:
            rows = statements.get(name)
            if rows:
                session.run(name, {"rows": orjson.dumps(rows).decode()})

    def defined(self, _: SqlSession, e: Any, __: Any) -> tuple[str, dict[str, Any]]:
        d = e.definition
        return "insert_run_tasks", {
            "task_id": e.task_id,
            "task_queue_id": d["taskQueueId"],
            "task_group_id": d["taskGroupId"],
            "project_id": d["projectId"],
            "scheduler_id": d["schedulerId"],
        }

    def run_pending(self, _: SqlSession, e: Any, __: Any) -> tuple[str, dict[str, Any]]:
        return "insert_runs", {
            "task_id": _task_id(e),
            "run_id": e.run_id,
            "state": "pending",
            "reason_created": e.reason_created,
            "reason_resolved": None,
            "scheduled": e.scheduled,
            "resolved": None,
            "total_seconds": None,
        }

    def unscheduled_resolved(self, _: SqlSession, e: Any, __: Any) -> tuple[str, dict[str, Any]]:
        return "insert_runs", {
            "task_id": _task_id(e),
            "run_id": e.run_id,
            "state": "exception",
            "reason_created": "exception",
            "reason_resolved": e.reason_resolved,
            "scheduled": e.resolved,
            "resolved": e.resolved,
            "total_seconds": 0.0,
        }

    def run_claimed(self, _: SqlSession, e: Any, __: Any) -> tuple[str, dict[str, Any]]:
        return "claim_runs", {
            "task_id": _task_id(e),
            "run_id": e.run_id,
            "worker_group": e.worker_group,
            "worker_id": e.worker_id,
            "started": e.started,
        }

    def run_resolved(self, _: SqlSession, e: Any, __: Any) -> tuple[str, dict[str, Any]]:
        return "resolve_runs", {
            "task_id": _task_id(e),
            "run_id": e.run_id,
            "state": e.state,
            "reason_resolved": e.reason_resolved,
            "resolved": e.resolved,
        }


# Reading and exporting the view.


def iter_runs(store: Any, page: int = 10_000) -> Iterator[list[dict[str, Any]]]:
    """Every run, in (taskId, runId) order, a page of export rows at a time."""
    after = ("", -1)
    while True:
        with store.reading() as session:
            rows = session.rows(
                "runs_page", {"after_task_id": after[0], "after_run_id": after[1], "limit": page}
            )
        if not rows:
            return
        yield [{name: row[column] for name, column in EXPORT_COLUMNS.items()} for row in rows]
        after = (rows[-1]["task_id"], rows[-1]["run_id"])


def write_csv(pages: Iterable[list[dict[str, Any]]], out: IO[str]) -> int:
    writer = csv.DictWriter(out, fieldnames=list(EXPORT_COLUMNS), lineterminator="\n")
    writer.writeheader()
    count = 0
    for rows in pages:
        writer.writerows(rows)
        count += len(rows)
    return count


def arrow_schema() -> Any:
    import pyarrow as pa

    fields = []
    for name in EXPORT_COLUMNS:
        if name == "runId":
            kind = pa.int32()
        elif name in TIME_COLUMNS:
            kind = pa.timestamp("ms", tz="UTC")
        elif name in SECONDS_COLUMNS:
            kind = pa.float64()
        else:
            kind = pa.string()
        fields.append(pa.field(name, kind, nullable=name not in ("taskId", "runId")))
    return pa.schema(fields)


def write_parquet(pages: Iterable[list[dict[str, Any]]], out: Any) -> int:
    """Parquet with typed columns: times as UTC timestamps, durations as doubles."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = arrow_schema()
    count = 0
    with pq.ParquetWriter(out, schema) as writer:
        for rows in pages:
            columns = []
            for field in schema:
                values = [row[field.name] for row in rows]
                if field.name in TIME_COLUMNS:
                    values = [parse_time(v) if v else None for v in values]
                columns.append(pa.array(values, field.type))
            writer.write_table(pa.Table.from_arrays(columns, schema=schema))
            count += len(rows)
    return count
