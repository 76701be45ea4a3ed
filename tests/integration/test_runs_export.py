"""The runs analytics view: one row per run, kept by a log follower, exported as CSV and Parquet."""

from __future__ import annotations

import csv
import io

import pytest

from cairn.domain.aggregate import acting_as
from cairn.domain.timestamps import parse_time
from tests.integration.test_projection_rebuild import cli, mixed_workload

COLUMNS = [
    "taskId", "runId", "taskQueueId", "taskGroupId", "projectId", "schedulerId", "state",
    "reasonCreated", "reasonResolved", "workerGroup", "workerId", "scheduled", "started", "resolved",
    "pendingSeconds", "runningSeconds", "totalSeconds",
]


def expected_runs(runtime, task_ids) -> list[dict]:
    """What each task's runs say, as export rows (times as text, durations in seconds)."""
    rows = []
    with acting_as("tests"):
        for task_id in sorted(task_ids):
            status = runtime.queue.task(task_id).status()
            for run in status["runs"]:
                def seconds(start, end):
                    if not (run.get(start) and run.get(end)):
                        return None
                    return round((parse_time(run[end]) - parse_time(run[start])).total_seconds(), 3)

                rows.append({
                    "taskId": task_id, "runId": run["runId"], "taskQueueId": status["taskQueueId"],
                    "taskGroupId": status["taskGroupId"], "projectId": status["projectId"],
                    "schedulerId": status["schedulerId"], "state": run["state"],
                    "reasonCreated": run["reasonCreated"], "reasonResolved": run.get("reasonResolved"),
                    "workerGroup": run.get("workerGroup"), "workerId": run.get("workerId"),
                    "scheduled": run["scheduled"], "started": run.get("started"), "resolved": run.get("resolved"),
                    "pendingSeconds": seconds("scheduled", "started"),
                    "runningSeconds": seconds("started", "resolved"),
                    "totalSeconds": seconds("scheduled", "resolved"),
                })
    return sorted(rows, key=lambda r: (r["taskId"], r["runId"]))


def view_rows(runtime) -> list[dict]:
    from cairn.projections.queue.runs_analytics import iter_runs

    return [row for page in iter_runs(runtime.store) for row in page]


@pytest.fixture
def workload(runtime):
    tasks = mixed_workload(runtime)
    return [task_id for name, task_id in tasks.items() if name != "group"]


def test_the_follower_keeps_one_row_per_run_with_its_position(runtime, workload):
    (follower,) = [f for f in runtime.view_followers if f.name == "runs"]
    assert view_rows(runtime) == []
    assert follower.catch_up() > 0
    assert follower.position() == runtime.log.recorder.max_notification_id()
    rows = view_rows(runtime)
    assert rows == expected_runs(runtime, workload)
    assert {(r["state"], r["reasonResolved"]) for r in rows} >= {
        ("completed", "completed"), ("failed", "failed"), ("exception", "worker-shutdown"),
        ("exception", "canceled"), ("running", None), ("pending", None),
    }
    assert follower.catch_up() == 0  # nothing new: nothing folded twice
    assert view_rows(runtime) == rows


def test_folding_a_batch_twice_changes_nothing(runtime, workload):
    from cairn.consumers.log_follower import read_events

    runtime.view_followers[0].catch_up()
    before = view_rows(runtime)
    with runtime.store.unit_of_work() as session:
        runtime.runs_analytics.handle(session, read_events(runtime.log, 0, 10_000))
    assert view_rows(runtime) == before


def test_the_runs_view_is_verified_and_rebuilt_like_any_other(runtime, workload):
    runtime.view_followers[0].catch_up()
    assert cli(runtime, "projections", "verify", "runs").exit_code == 0
    with runtime.store.unit_of_work() as session:
        session.execute_sql(f"UPDATE runs SET worker_id = 'someone-else' WHERE task_id = '{workload[0]}'")
    result = cli(runtime, "projections", "verify", "runs")
    assert result.exit_code == 1
    assert f"runs: runs [task_id='{workload[0]}', run_id=0]: worker_id is 'someone-else' in the view" in result.output
    assert cli(runtime, "projections", "rebuild", "runs").exit_code == 0
    assert cli(runtime, "projections", "verify", "runs").exit_code == 0
    assert view_rows(runtime) == expected_runs(runtime, workload)


def test_export_csv_has_the_header_and_one_line_per_run(runtime, workload, tmp_path):
    result = cli(runtime, "export", "runs", "--format", "csv")  # catches the view up first
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == ",".join(COLUMNS)
    expected = expected_runs(runtime, workload)
    assert len(lines) == 1 + len(expected)
    parsed = list(csv.DictReader(io.StringIO(result.output)))
    assert [(r["taskId"], int(r["runId"]), r["state"]) for r in parsed] == [
        (r["taskId"], r["runId"], r["state"]) for r in expected
    ]

    out = tmp_path / "runs.csv"
    assert cli(runtime, "export", "runs", "--output", str(out)).exit_code == 0
    assert out.read_text() == result.output


def test_export_parquet_reads_back_with_the_same_rows(runtime, workload, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    out = tmp_path / "runs.parquet"
    result = cli(runtime, "export", "runs", "--format", "parquet", "--output", str(out))
    assert result.exit_code == 0, result.output
    table = pq.read_table(out)
    assert table.column_names == COLUMNS
    assert str(table.schema.field("scheduled").type) == "timestamp[ms, tz=UTC]"
    rows = table.to_pylist()
    expected = expected_runs(runtime, workload)
    for row in expected:
        for column in ("scheduled", "started", "resolved"):
            row[column] = parse_time(row[column]) if row[column] else None
    assert rows == expected
