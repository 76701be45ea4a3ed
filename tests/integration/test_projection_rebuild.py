"""Views rebuilt from the log: verify finds what drifted, rebuild fixes it, live writers lose nothing."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import taskcluster
from click.testing import CliRunner

from cairn.cli import main
from cairn.domain.aggregate import acting_as
from cairn.domain.timestamps import utcnow
from cairn.projections.rebuild.replay import Replay
from cairn.projections.rebuild.scratch import rename_tables, scratch_schema
from tests.acceptance.queue_helpers import task_definition
from tests.conftest import SECRET_KEY

QUEUE = "cairn-test/rebuild"
EXPIRES = "3000-01-01T00:00:00.000Z"


def cli(runtime: Any, *args: str) -> Any:
    env = {
        "CAIRN_DATABASE_URL": runtime.settings.database_url,
        "CAIRN_SECRET_KEY": SECRET_KEY,
        "CAIRN_DATA_DIR": runtime.settings.data_dir,
    }
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def define(runtime: Any, **overrides: Any) -> str:
    task_id = taskcluster.slugId()
    runtime.queue.define_task(task_id, task_definition(taskQueueId=QUEUE, **overrides), utcnow())
    return task_id


def work_one(runtime: Any, state: str = "completed", reason: str | None = None) -> str:
    (claim,) = runtime.queue.claim_work(QUEUE, "tests", "w1", 1, utcnow())
    runtime.queue.report(claim.task.task_id, claim.run_id, state, reason or state, utcnow())
    return claim.task.task_id


def mixed_workload(runtime: Any) -> dict[str, str]:
    """Tasks through every path of their lives, a sealed group, clients and roles."""
    q = runtime.queue
    group = taskcluster.slugId()
    tasks: dict[str, str] = {}
    with acting_as("tests"):
        tasks["first"] = define(runtime, taskGroupId=group, priority="high")
        tasks["dependent"] = define(runtime, taskGroupId=group, dependencies=[tasks["first"]])
        tasks["waiting"] = define(runtime, taskGroupId=group, dependencies=[tasks["dependent"]])
        assert work_one(runtime) == tasks["first"]  # completed: releases the dependent
        assert work_one(runtime, "failed") == tasks["dependent"]  # failed: "waiting" stays blocked
        tasks["retried"] = define(runtime, taskGroupId=group)
        work_one(runtime, "exception", "worker-shutdown")  # retried by a new pending run
        assert work_one(runtime) == tasks["retried"]
        tasks["running"] = define(runtime, taskGroupId=group)
        q.claim_work(QUEUE, "tests", "w2", 1, utcnow())
        tasks["cancelled"] = define(runtime, taskGroupId=group)
        q.cancel_task(tasks["cancelled"], utcnow())
        q.cancel_task(tasks["waiting"], utcnow())  # unscheduled: resolved as run 0
        tasks["rerun"] = define(runtime, taskGroupId=group)
        work_one(runtime)
        q.rerun_task(tasks["rerun"], utcnow())
        tasks["reprioritised"] = define(runtime, taskGroupId=group)
        q.change_priority(tasks["reprioritised"], "highest")
        q.seal_task_group(group, utcnow())
        runtime.auth.create_client("team/ci", "CI", EXPIRES, ["queue:create-task:*"], False)
        runtime.auth.create_role("project:ci", "CI", ["assume:team/ci"])
        runtime.auth.create_role("repo:*", "", ["queue:*"])
    tasks["group"] = group
    return tasks


def test_scratch_ddl_renames_tables_and_indexes_but_not_columns_or_aliases():
    ddl = scratch_schema("postgres", ["tasks", "pending"], "__rebuild")
    assert any("CREATE TABLE IF NOT EXISTS tasks__rebuild (" in s for s in ddl)
    assert any("CREATE INDEX IF NOT EXISTS tasks_by_group__rebuild ON tasks__rebuild " in s for s in ddl)
    assert any("pending_order__rebuild ON pending__rebuild" in s for s in ddl)
    renames = {"tasks": "tasks__x", "task_queues": "task_queues__x"}
    assert (
        rename_tables("SELECT count(*) AS tasks FROM tasks WHERE state = 'tasks' AND task_id = :tasks", renames)
        == "SELECT count(*) AS tasks FROM tasks__x WHERE state = 'tasks' AND task_id = :tasks"
    )
    assert rename_tables("SET x = task_queues.x, y = excluded.tasks", renames) == (
        "SET x = task_queues__x.x, y = excluded.tasks"
    )


def test_staging_skips_only_work_no_statement_can_observe():
    from cairn.projections.queue.views import QueueViews
    from cairn.projections.rebuild.scratch import scratch_names, scratch_queries
    from cairn.projections.rebuild.staging import StagingSession, open_staging
    from cairn.projections.store.queries import load_queries

    tables = ["tasks", "pending", "task_queues"]
    schema = scratch_schema("sqlite", tables, "__s")
    staging, deferred = open_staging(schema)
    renames = scratch_names("sqlite", tables, "__s")
    session = StagingSession(
        staging.cursor(), scratch_queries(load_queries("sqlite"), renames), [renames[t] for t in tables],
        QueueViews.last_write_wins, deferred, schema,
    )

    def count(table: str) -> int:
        return staging.execute(f"SELECT count(*) FROM {table}__s").fetchone()[0]

    # The task row: only the latest write is applied, and before anything reads the table.
    row = dict(task_id="t1", task_group_id="g", scheduler_id="-", project_id="none", task_queue_id="p/w",
               state="pending", resolved=False, priority="lowest", deadline=EXPIRES, expires=EXPIRES,
               definition="{}", status="{}")
    session.run("upsert_task", row)
    session.run("upsert_task", {**row, "state": "running"})
    assert count("tasks") == 0
    assert [r["state"] for r in session.rows("task_rows", {"ids": '["t1"]'})] == ["running"]
    session.run("upsert_task", {**row, "state": "completed", "resolved": True})
    session.flush()
    assert [tuple(r) for r in staging.execute("SELECT state, resolved FROM tasks__s")] == [("completed", 1)]

    # A read is remembered until its table is written.
    queue = {"task_queue_id": "p/w"}
    assert session.one("get_task_queue_row", queue) is None
    seen = {**queue, "provisioner_id": "p", "worker_type": "w", "expires": EXPIRES, "last_date_active": EXPIRES,
            "stale_expires": EXPIRES, "stale_active": EXPIRES}
    session.run("task_queue_seen", seen)
    assert session.one("get_task_queue_row", queue)["expires"] == EXPIRES

    # Wake-ups name no table; the API's indexes wait for PostgreSQL, the replay's own are built.
    assert session.run("notify_pending", {"payload": "p/w"}) == -1
    session.run("delete_pending", {"task_id": "t1"})
    indexes = {r[0] for r in staging.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "tasks_by_group__s" not in indexes and "pending_order__s" not in indexes


def test_staging_keeps_task_rows_nothing_reads_for_the_copy(monkeypatch):
    from cairn.projections.queue.views import QueueViews
    from cairn.projections.rebuild import staging as staging_module
    from cairn.projections.rebuild.rows_for_copy import RowsForCopy
    from cairn.projections.rebuild.scratch import scratch_names, scratch_queries
    from cairn.projections.rebuild.staging import StagingSession, open_staging
    from cairn.projections.store.queries import load_queries

    monkeypatch.setattr(staging_module, "HELD_ROWS", 2)
    schema = scratch_schema("sqlite", ["tasks"], "__s")
    renames = scratch_names("sqlite", ["tasks"], "__s")
    queries = scratch_queries(load_queries("sqlite"), renames)

    def session() -> tuple[Any, StagingSession]:
        staging, deferred = open_staging(schema)
        return staging, StagingSession(
            staging.cursor(), queries, ["tasks__s"], QueueViews.last_write_wins, deferred, schema
        )

    def row(task_id: str, **changes: Any) -> dict[str, Any]:
        return {**dict(task_id=task_id, task_group_id="g", scheduler_id="-", project_id="none", task_queue_id="p/w",
                       state="pending", resolved=False, priority="lowest", deadline=EXPIRES, expires=EXPIRES,
                       definition="{}", status="{}"), **changes}

    # Never read: the latest row of each task goes to the COPY, as SQLite would have stored it.
    staging, kept = session()
    for task_id in ("t1", "t2", "t3"):  # more than are held: applied, still outside the database
        kept.run("upsert_task", row(task_id))
    kept.run("upsert_task", row("t1", state="completed", resolved=True))
    kept.finish()
    assert staging.execute("SELECT count(*) FROM tasks__s").fetchone()[0] == 0
    columns, rows = kept.rows_for_copy("tasks__s")
    assert sorted((r[columns.index("task_id")], r[columns.index("state")], r[columns.index("resolved")])
                  for r in rows) == [("t1", "completed", 1), ("t2", "pending", 0), ("t3", "pending", 0)]

    # Read before the end: every row so far goes in first, and the rest as before.
    staging, read = session()
    for task_id in ("t1", "t2", "t3"):
        read.run("upsert_task", row(task_id))
    assert [r["state"] for r in read.rows("task_rows", {"ids": '["t1"]'})] == ["pending"]
    read.run("upsert_task", row("t1", state="running"))
    read.finish()
    assert read.rows_for_copy("tasks__s") is None
    assert {r[0]: r[1] for r in staging.execute("SELECT task_id, state FROM tasks__s")} == {
        "t1": "running", "t2": "pending", "t3": "pending"}

    # A value SQLite would convert for its column: the rows go through SQLite after all.
    staging, converted = session()
    converted.run("upsert_task", row("t1", priority=3))
    converted.finish()
    assert converted.rows_for_copy("tasks__s") is None
    assert staging.execute("SELECT priority FROM tasks__s").fetchone()[0] == "3"

    # Rows two held queries write to one table go through SQLite, in the order they are applied.
    staging, deferred = open_staging(schema)
    both = StagingSession(staging.cursor(), {**queries, "upsert_task_again": queries["upsert_task"]}, ["tasks__s"],
                          {"upsert_task": ("task_id",), "upsert_task_again": ("task_id",)}, deferred, schema)
    both.run("upsert_task", row("t1"))
    both.run("upsert_task_again", row("t2"))
    both.finish()
    assert both.rows_for_copy("tasks__s") is None
    assert staging.execute("SELECT count(*) FROM tasks__s").fetchone()[0] == 2

    # Only a plain upsert of every column qualifies.
    cursor = staging.cursor()
    upsert = queries["upsert_task"].sql
    assert RowsForCopy.of(upsert, ("task_id",), cursor) is not None
    assert RowsForCopy.of(upsert + " WHERE tasks__s.state = 'pending'", ("task_id",), cursor) is None
    assert RowsForCopy.of(upsert.replace(", status)", ")").replace(", :status)", ")"), ("task_id",), cursor) is None
    assert RowsForCopy.of(upsert.replace("excluded.state", "'x'"), ("task_id",), cursor) is None
    assert RowsForCopy.of(upsert, ("task_group_id",), cursor) is None


def test_staging_never_makes_a_short_lived_row_that_nothing_saw():
    from cairn.projections.queue.views import QueueViews
    from cairn.projections.rebuild.scratch import scratch_names, scratch_queries
    from cairn.projections.rebuild.staging import StagingSession, open_staging
    from cairn.projections.store.queries import load_queries

    tables = ["pending", "claims"]
    schema = scratch_schema("sqlite", tables, "__s")
    staging, deferred = open_staging(schema)
    renames = scratch_names("sqlite", tables, "__s")
    session = StagingSession(
        staging.cursor(), scratch_queries(load_queries("sqlite"), renames), [renames[t] for t in tables],
        {}, deferred, schema, short_lived=QueueViews.short_lived,
    )

    def pending(task_id: str) -> dict[str, Any]:
        return dict(task_queue_id="p/w", priority_rank=0, task_id=task_id, run_id=0, inserted=EXPIRES)

    def claim(task_id: str) -> dict[str, Any]:
        return dict(task_id=task_id, run_id=0, task_queue_id="p/w", worker_group="g", worker_id="w",
                    taken_until=EXPIRES)

    def rows(table: str) -> list[tuple[Any, ...]]:
        session.flush()
        return [tuple(r) for r in staging.execute(f"SELECT task_id, run_id FROM {table}__s ORDER BY 1")]

    # Nothing could have added a row yet: a delete has nothing to do.
    assert session.run("delete_pending", {"task_id": "t0"}) == 0

    # Made and removed again with nothing in between: never made; the rest keep their order.
    for task_id in ("t1", "t2", "t3"):
        session.run("insert_pending", pending(task_id))
    session.run("delete_pending", {"task_id": "t2"})
    assert [r[0] for r in staging.execute("SELECT task_id FROM pending__s ORDER BY seq")] == []
    session.flush()
    assert [r[0] for r in staging.execute("SELECT task_id FROM pending__s ORDER BY seq")] == ["t1", "t3"]

    # A statement touching the table in between makes the row, and the delete then runs.
    session.run("insert_claim", claim("t4"))
    session.run("extend_claim", {"task_id": "t4", "run_id": 0, "taken_until": EXPIRES})
    assert rows("claims") == [("t4", 0)]
    session.run("delete_claims", {"task_id": "t4"})
    assert rows("claims") == []

    # A key held again after its row was made: the delete removes both, as it would have.
    session.run("insert_claim", claim("t5"))
    session.flush()
    session.run("insert_claim", {**claim("t5"), "run_id": 1})
    session.run("delete_claims", {"task_id": "t5"})
    assert rows("claims") == []

    # A second row by one key while the first is still held: both are made, in order.
    session.run("insert_pending", pending("t6"))
    session.run("insert_pending", {**pending("t6"), "run_id": 1})
    assert rows("pending") == [("t1", 0), ("t3", 0), ("t6", 0), ("t6", 1)]


def test_a_held_task_row_is_written_as_the_task_was_when_it_was_saved():
    from cairn.domain.queue.service import normalise_definition
    from cairn.domain.queue.task import Task
    from cairn.projections.queue.views import QueueViews, write_task_row
    from cairn.projections.rebuild.scratch import scratch_names, scratch_queries
    from cairn.projections.rebuild.staging import StagingSession, open_staging
    from cairn.projections.store.queries import load_queries

    schema = scratch_schema("sqlite", ["tasks"], "__s")
    staging, deferred = open_staging(schema)
    renames = scratch_names("sqlite", ["tasks"], "__s")
    saved: dict[int, Any] = {}
    session = StagingSession(
        staging.cursor(), scratch_queries(load_queries("sqlite"), renames), [renames["tasks"]],
        QueueViews.last_write_wins, deferred, schema, load=lambda task_id, version: saved[version],
    )
    with acting_as("tests"):
        task_id = taskcluster.slugId()
        task = Task(task_id=task_id, definition=normalise_definition(task_id, task_definition(), utcnow()))
        task.schedule(utcnow())
        write_task_row(session, task)  # held, not worked out
        saved[task.version] = Task(task_id=task_id, definition=task.definition)
        saved[task.version].schedule(utcnow())
        task.claim(0, "tests", "w1", utcnow(), 1200)  # the next save is under way when something reads the table
    assert [r["state"] for r in session.rows("task_rows", {"ids": f'["{task_id}"]'})] == ["pending"]


def test_a_rebuild_copies_task_rows_nothing_read_into_postgresql_from_memory(runtime, monkeypatch):
    if runtime.settings.backend != "postgres":
        pytest.skip("PostgreSQL rebuilds alone are staged")
    from cairn.projections.rebuild import staging

    from_memory = []
    copy_table = staging.copy_table

    def copy_noting(staging_db: Any, cursor: Any, table: str, waiting: Any = None) -> int:
        if waiting is not None:
            from_memory.append(table)
        return copy_table(staging_db, cursor, table, waiting)

    monkeypatch.setattr(staging, "copy_table", copy_noting)
    with acting_as("tests"):
        for _ in range(3):
            define(runtime)  # depending on nothing: no statement reads the task rows
        work_one(runtime)
        work_one(runtime, "exception", "worker-shutdown")
        runtime.queue.claim_work(QUEUE, "tests", "w2", 1, utcnow())
    assert cli(runtime, "projections", "rebuild", "queue").exit_code == 0
    assert from_memory == ["tasks__rebuild"]
    result = cli(runtime, "projections", "verify", "queue")
    assert result.exit_code == 0, result.output


def constraints(runtime: Any, table: str) -> list[tuple[str, str]]:
    with runtime.store.reading() as session:
        session.cursor.execute(
            "SELECT conname AS name, pg_get_constraintdef(oid) AS definition FROM pg_constraint "
            "WHERE conrelid = %s::regclass ORDER BY conname",
            (table,),
        )
        return [(dict(r)["name"], dict(r)["definition"]) for r in session.cursor.fetchall()]


def test_a_large_copy_builds_the_keys_after_it_under_their_own_names(runtime, monkeypatch):
    if runtime.settings.backend != "postgres":
        pytest.skip("PostgreSQL rebuilds alone are staged")
    from cairn.projections.rebuild import staging

    monkeypatch.setattr(staging, "KEYS_AFTER_ROWS", 2)  # three task rows are a large copy
    keys_dropped = []
    keys_built_after = staging._keys_built_after

    def noting(cursor: Any, table: str) -> Any:
        keys_dropped.append(table)
        return keys_built_after(cursor, table)

    monkeypatch.setattr(staging, "_keys_built_after", noting)
    with acting_as("tests"):
        task_ids = [define(runtime) for _ in range(3)]
    before = constraints(runtime, "tasks")
    assert ("tasks_pkey", "PRIMARY KEY (task_id)") in before
    assert cli(runtime, "projections", "rebuild", "queue").exit_code == 0
    assert "tasks__rebuild" in keys_dropped
    assert constraints(runtime, "tasks") == before
    result = cli(runtime, "projections", "verify", "queue")
    assert result.exit_code == 0, result.output
    with pytest.raises(Exception, match="tasks_pkey"), runtime.store.unit_of_work() as session:
        session.cursor.execute(
            "INSERT INTO tasks SELECT * FROM tasks WHERE task_id = %s", (task_ids[0],)
        )


def test_a_key_built_after_the_copy_refuses_the_rows_that_break_it(runtime, monkeypatch):
    if runtime.settings.backend != "postgres":
        pytest.skip("PostgreSQL rebuilds alone are staged")
    import sqlite3

    from cairn.projections.rebuild import staging

    monkeypatch.setattr(staging, "KEYS_AFTER_ROWS", 2)
    with runtime.store.unit_of_work() as session:
        session.execute_sql("CREATE TABLE keyed_copy (id TEXT PRIMARY KEY, n INTEGER NOT NULL UNIQUE)")
    try:
        rows = (["id", "n"], [("a", 1), ("b", 2), ("a", 3)])
        with pytest.raises(Exception, match="keyed_copy_pkey"), runtime.store.unit_of_work() as session:
            staging.copy_table(sqlite3.connect(":memory:"), session.cursor, "keyed_copy", rows)
        with runtime.store.unit_of_work() as session:
            copied = staging.copy_table(
                sqlite3.connect(":memory:"), session.cursor, "keyed_copy", (["id", "n"], [("a", 1), ("b", 2)])
            )
        assert copied == 2
        assert constraints(runtime, "keyed_copy") == [
            ("keyed_copy_n_key", "UNIQUE (n)"), ("keyed_copy_pkey", "PRIMARY KEY (id)")
        ]
    finally:
        with runtime.store.unit_of_work() as session:
            session.execute_sql("DROP TABLE keyed_copy")


def test_verify_passes_finds_a_tampered_row_and_rebuild_fixes_it(runtime):
    tasks = mixed_workload(runtime)

    listed = cli(runtime, "projections", "list")
    assert listed.exit_code == 0, listed.output
    for name in ("queue", "auth", "workers", "runs", "dependency_waits"):
        assert name in listed.output

    result = cli(runtime, "projections", "verify")
    assert result.exit_code == 0, result.output
    assert "views match the log" in result.output

    with runtime.store.unit_of_work() as session:
        session.execute_sql(f"UPDATE tasks SET state = 'completed' WHERE task_id = '{tasks['running']}'")
        session.execute_sql("DELETE FROM roles WHERE role_id = 'project:ci'")
        # The first of the two pending runs moves behind the other: claim order changed.
        session.execute_sql(f"UPDATE pending SET seq = seq + 1000 WHERE task_id = '{tasks['rerun']}'")
    result = cli(runtime, "projections", "verify")
    assert result.exit_code == 1, result.output
    (moved,) = [line for line in result.output.splitlines() if "out of the order the log gives, by seq" in line]
    assert moved.startswith("queue: pending [task_id=")
    assert tasks["rerun"] in moved or tasks["reprioritised"] in moved
    assert f"queue: tasks [task_id='{tasks['running']}']: state is 'completed' in the view, 'running'" in result.output
    assert "auth: roles [role_id='project:ci']: missing from the view" in result.output

    result = cli(runtime, "projections", "rebuild", "queue")
    assert result.exit_code == 0, result.output
    assert "rebuilt queue" in result.output
    assert cli(runtime, "projections", "verify", "queue").exit_code == 0
    assert cli(runtime, "projections", "verify", "auth").exit_code == 1
    assert cli(runtime, "projections", "rebuild").exit_code == 0
    assert cli(runtime, "projections", "verify").exit_code == 0

    # The swapped-in views serve the queue as before: claim order, then a new task.
    with acting_as("tests"):
        assert runtime.queue.task(tasks["running"]).state == "running"
        claimed = runtime.queue.claim_work(QUEUE, "tests", "w3", 10, utcnow())
        assert [c.task.task_id for c in claimed] == [tasks["reprioritised"], tasks["rerun"]]
        define(runtime)
    assert cli(runtime, "projections", "verify").exit_code == 0


def test_a_rebuild_in_lanes_makes_the_views_one_process_makes(runtime, monkeypatch):
    if runtime.settings.backend != "postgres":
        pytest.skip("lanes fold PostgreSQL rebuilds only")
    from cairn.projections.rebuild import lanes

    tasks = mixed_workload(runtime)
    with acting_as("tests"):
        for _ in range(3):
            define(runtime)
        work_one(runtime, "exception", "worker-shutdown")
    with runtime.store.unit_of_work() as session:
        session.execute_sql(f"UPDATE tasks SET state = 'completed' WHERE task_id = '{tasks['running']}'")
        session.execute_sql("DELETE FROM runs")

    monkeypatch.setattr(lanes, "plan", queue_apart)
    result = cli(runtime, "projections", "rebuild")
    assert result.exit_code == 0, result.output
    monkeypatch.undo()
    result = cli(runtime, "projections", "verify")
    assert result.exit_code == 0, result.output
    with acting_as("tests"):
        assert runtime.queue.task(tasks["running"]).state == "running"
        assert [c.task.task_id for c in runtime.queue.claim_work(QUEUE, "tests", "w3", 10, utcnow())]


def queue_apart(replay: Any, limits: Any) -> list[list[int]]:
    """Lanes for a short log: the queue's views in one; every other view, the runs analytics riding along, in the other."""
    names = [t.name for t in replay.targets]
    if "queue" not in names or len(names) < 2:
        return []
    return [[names.index("queue")], [i for i, n in enumerate(names) if n != "queue"]]


def test_lanes_are_planned_only_for_long_logs(runtime):
    from cairn.projections.rebuild import lanes
    from cairn.projections.rebuild.replay import Replay, Target

    mixed_workload(runtime)
    replay = Replay(runtime.log, [Target(p) for p in [runtime.queue_views, runtime.worker_views]])
    with runtime.store.reading() as session:
        assert lanes.plan(replay, replay.limits(session)) == []


def test_a_task_expired_right_after_it_resolved_leaves_no_row(runtime):
    with acting_as("tests"):
        for _ in range(2):  # the first time round, every statement is new to a rebuild
            task_id = define(runtime)
            work_one(runtime)
            kept = define(runtime)  # between the task's last save and its expiry
            runtime.queue.expire_task(task_id)
    assert cli(runtime, "projections", "rebuild").exit_code == 0
    assert cli(runtime, "projections", "verify").exit_code == 0
    with runtime.store.reading() as session:
        assert [r["task_id"] for r in session.rows("task_rows", {"ids": _json([task_id, kept])})] == [kept]


def test_the_rebuild_folds_each_aggregate_as_loading_it_from_the_log_does(runtime):
    from cairn.projections.rebuild.state_folder import StateFolder

    mixed_workload(runtime)
    with acting_as("tests"):
        runtime.auth.reset_access_token("team/ci")
        runtime.auth.delete_role("repo:*")
    folder = StateFolder(runtime.log, capacity=3)  # a few evicted, loaded again
    replay = Replay(runtime.log, [])
    with runtime.store.reading() as session:
        head = replay.head(session)
    folded = 0
    for page in replay._pages(0, head):
        for _, event in page:
            state = folder.fold(event)
            loaded = runtime.log.repository.get(event.originator_id, version=event.originator_version)
            assert type(state) is type(loaded) and vars(state) == vars(loaded), event
            folded += 1
    assert folded > 30


def test_an_unknown_projection_is_refused(runtime):
    result = CliRunner().invoke(
        main, ["projections", "rebuild", "nope"],
        env={"CAIRN_DATABASE_URL": runtime.settings.database_url, "CAIRN_SECRET_KEY": SECRET_KEY},
    )
    assert result.exit_code == 2
    assert "no projection 'nope'" in result.output


@pytest.mark.parametrize("in_lanes", [False, True], ids=["one-process", "lanes"])
def test_a_rebuild_while_tasks_are_being_created_loses_nothing(runtime, in_lanes, monkeypatch):
    if in_lanes:
        if runtime.settings.backend != "postgres":
            pytest.skip("lanes fold PostgreSQL rebuilds only")
        from cairn.projections.rebuild import lanes

        monkeypatch.setattr(lanes, "plan", queue_apart)
    mixed_workload(runtime)
    created: list[str] = []
    stop = threading.Event()
    errors: list[BaseException] = []

    def keep_creating() -> None:
        try:
            with acting_as("tests"):
                while not stop.is_set():
                    created.append(define(runtime))
                    if len(created) % 3 == 0:
                        work_one(runtime)
        except BaseException as e:  # surfaced below
            errors.append(e)

    creator = threading.Thread(target=keep_creating)
    creator.start()
    try:
        deadline = time.monotonic() + 10
        while len(created) < 20 and time.monotonic() < deadline:
            time.sleep(0.01)
        before = len(created)
        swap = Replay.swap

        def swap_once_tasks_were_created_meanwhile(replay: Replay, *args: Any) -> None:
            # A rebuild can outrun the writers; the swap must still meet some.
            deadline = time.monotonic() + 10
            while len(created) < before + 3 and time.monotonic() < deadline:
                time.sleep(0.01)
            swap(replay, *args)

        monkeypatch.setattr(Replay, "swap", swap_once_tasks_were_created_meanwhile)
        result = cli(runtime, "projections", "rebuild")
        during = len(created) - before
        monkeypatch.setattr(Replay, "swap", swap)
        time.sleep(0.2)
    finally:
        stop.set()
        creator.join(30)
    assert not errors, errors
    assert result.exit_code == 0, result.output
    assert during > 0, "nothing was created during the rebuild: the test proves nothing"

    assert cli(runtime, "projections", "verify").exit_code == 0
    with runtime.store.reading() as session:
        in_view = {r["task_id"] for r in session.rows("task_rows", {"ids": _json(created)})}
    assert in_view == set(created)


def _json(value: Any) -> str:
    import orjson

    return orjson.dumps(value).decode()


def claims_as_first_recorded(runtime: Any) -> int:
    """Rewrite every ``RunClaimed`` in the log as recorded before it carried its task queue; returns how many."""
    import orjson

    table = runtime.log.recorder.events_table_name
    mark = "%s" if runtime.settings.backend == "postgres" else "?"
    with runtime.store.unit_of_work() as session:
        session.cursor.execute(
            f"SELECT originator_id, originator_version, state FROM {table} WHERE topic LIKE {mark}",
            ("%:Task.RunClaimed",),
        )
        rows = [dict(row) for row in session.cursor.fetchall()]
        for row in rows:
            state = orjson.loads(bytes(row["state"]))
            assert state.pop("task_queue_id") == QUEUE
            session.cursor.execute(
                f"UPDATE {table} SET state = {mark} WHERE originator_id = {mark} AND originator_version = {mark}",
                (orjson.dumps(state), row["originator_id"], row["originator_version"]),
            )
    return len(rows)


@pytest.mark.parametrize("in_lanes", [False, True], ids=["one-process", "lanes"])
def test_claims_recorded_before_they_carried_their_task_queue_rebuild_the_same_views(runtime, in_lanes, monkeypatch):
    from cairn.projections.rebuild import lanes
    from cairn.projections.rebuild.replay import Target

    if in_lanes and runtime.settings.backend != "postgres":
        pytest.skip("lanes fold PostgreSQL rebuilds only")
    from cairn.projections.rebuild import replay as replays

    mixed_workload(runtime)
    with acting_as("tests"):
        q = runtime.queue
        q.claim_work(QUEUE, "tests", "w4", 1, utcnow())  # still running: its claimed run stays
    assert claims_as_first_recorded(runtime) >= 6
    # Claims recorded since carry it: a replay in one process folds for the old ones
    # only, and goes on to read just what the worker views handle.
    monkeypatch.setattr(replays, "FOLD_LINGER", 3)
    with acting_as("tests"):
        for _ in range(3):
            define(runtime)
            work_one(runtime, "exception", "worker-shutdown")
        q.claim_work(QUEUE, "tests", "w5", 2, utcnow())
    assert cli(runtime, "projections", "verify").exit_code == 0
    # The worker views gone, and the tasks view they could once fall back on.
    with runtime.store.unit_of_work() as session:
        for table in ("claimed_runs", "queue_workers", "worker_recent_tasks", "task_queues", "tasks"):
            session.execute_sql(f"DELETE FROM {table}")

    views = {"workers": runtime.worker_views, "queue": runtime.queue_views}
    with monkeypatch.context() as patch:
        if in_lanes:  # the worker views in a lane of their own, apart from the task's fold
            patch.setattr(lanes, "plan", lambda replay, limits: [[0], [1]])
            replay = Replay(runtime.log, [Target(views["workers"]), Target(views["queue"])])
        else:
            replay = Replay(runtime.log, [Target(views["workers"])], lanes=1, read_batch=3)
        replay.build()
        replay.swap()
    assert replay.staged or runtime.settings.backend != "postgres"
    assert len(replay.lane_report) == (2 if in_lanes else 0)
    if not in_lanes:
        assert cli(runtime, "projections", "rebuild", "queue").exit_code == 0
    result = cli(runtime, "projections", "verify")
    assert result.exit_code == 0, result.output
    with runtime.store.reading() as session:
        assert session.rows("list_claimed_tasks", {"task_queue_id": QUEUE, "after_claimed": "", "after_task_id": "",
                                                   "limit": 10})
