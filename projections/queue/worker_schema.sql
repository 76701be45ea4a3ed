-- The worker views: task queues, workers and the runs they claimed, folded from events.

-- name: create_task_queues
-- Every task queue a task was defined on or a worker used; provisioners and
-- worker types are the halves of its id.
CREATE TABLE IF NOT EXISTS task_queues (
    task_queue_id TEXT PRIMARY KEY,
    provisioner_id TEXT NOT NULL,
    worker_type TEXT NOT NULL,
    expires TEXT NOT NULL,
    last_date_active TEXT NOT NULL
);

-- name: create_task_queues_by_provisioner
CREATE INDEX IF NOT EXISTS task_queues_by_provisioner ON task_queues (provisioner_id, worker_type);

-- name: create_queue_workers
-- Every worker that claimed a task or declared itself, with its quarantine.
CREATE TABLE IF NOT EXISTS queue_workers (
    task_queue_id TEXT NOT NULL,
    worker_group TEXT NOT NULL,
    worker_id TEXT NOT NULL,
    first_claim TEXT NOT NULL,
    last_date_active TEXT NOT NULL,
    expires TEXT NOT NULL,
    quarantine_until TEXT,
    quarantine_details TEXT NOT NULL,
    PRIMARY KEY (task_queue_id, worker_group, worker_id)
);

-- name: create_worker_recent_tasks
-- The runs each worker claimed, newest last; only the latest 20 are kept.
CREATE TABLE IF NOT EXISTS worker_recent_tasks (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    task_queue_id TEXT NOT NULL,
    worker_group TEXT NOT NULL,
    worker_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    run_id INTEGER NOT NULL
);

-- name: create_worker_recent_tasks (postgres)
CREATE TABLE IF NOT EXISTS worker_recent_tasks (
    seq BIGSERIAL PRIMARY KEY,
    task_queue_id TEXT NOT NULL,
    worker_group TEXT NOT NULL,
    worker_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    run_id INTEGER NOT NULL
);

-- name: create_worker_recent_tasks_by_worker
CREATE INDEX IF NOT EXISTS worker_recent_tasks_by_worker
    ON worker_recent_tasks (task_queue_id, worker_group, worker_id, seq);

-- name: create_claimed_runs
-- Runs claimed and not yet resolved, with when and by whom, for listClaimedTasks.
CREATE TABLE IF NOT EXISTS claimed_runs (
    task_id TEXT NOT NULL,
    run_id INTEGER NOT NULL,
    task_queue_id TEXT NOT NULL,
    worker_group TEXT NOT NULL,
    worker_id TEXT NOT NULL,
    claimed TEXT NOT NULL,
    PRIMARY KEY (task_id, run_id)
);

-- name: create_claimed_runs_order
CREATE INDEX IF NOT EXISTS claimed_runs_order ON claimed_runs (task_queue_id, claimed, task_id);
