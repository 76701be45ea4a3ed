-- The runs analytics view: one row per run of every task, for export to
-- pandas, DuckDB or a warehouse. A read-side view, kept by a log follower
-- from its tracked position; rows stay after their task expires.

-- name: create_runs
-- One row per run; times are ISO 8601 strings, durations seconds (to the ms).
CREATE TABLE IF NOT EXISTS runs (
    task_id TEXT NOT NULL,
    run_id INTEGER NOT NULL,
    task_queue_id TEXT NOT NULL,
    task_group_id TEXT NOT NULL,
    project_id TEXT NOT NULL,
    scheduler_id TEXT NOT NULL,
    state TEXT NOT NULL,
    reason_created TEXT NOT NULL,
    reason_resolved TEXT,
    worker_group TEXT,
    worker_id TEXT,
    scheduled TEXT NOT NULL,
    started TEXT,
    resolved TEXT,
    pending_seconds DOUBLE PRECISION,
    running_seconds DOUBLE PRECISION,
    total_seconds DOUBLE PRECISION,
    PRIMARY KEY (task_id, run_id)
);

-- name: create_run_tasks
-- What every run of a task shares, from its definition.
CREATE TABLE IF NOT EXISTS run_tasks (
    task_id TEXT PRIMARY KEY,
    task_queue_id TEXT NOT NULL,
    task_group_id TEXT NOT NULL,
    project_id TEXT NOT NULL,
    scheduler_id TEXT NOT NULL
);
