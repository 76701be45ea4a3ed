-- The queue's write-side views: what decides claims, dependencies and groups.

-- name: create_tasks
-- One row per live task: its status as the aggregate last left it.
CREATE TABLE IF NOT EXISTS tasks (
    task_id TEXT PRIMARY KEY,
    task_group_id TEXT NOT NULL,
    scheduler_id TEXT NOT NULL,
    project_id TEXT NOT NULL,
    task_queue_id TEXT NOT NULL,
    state TEXT NOT NULL,
    resolved BOOLEAN NOT NULL,
    priority TEXT NOT NULL,
    deadline TEXT NOT NULL,
    expires TEXT NOT NULL,
    definition TEXT NOT NULL,
    status TEXT NOT NULL
);

-- name: create_tasks_by_group
CREATE INDEX IF NOT EXISTS tasks_by_group ON tasks (task_group_id, task_id);

-- name: create_tasks_by_deadline
CREATE INDEX IF NOT EXISTS tasks_by_deadline ON tasks (resolved, deadline);

-- name: create_tasks_by_expiry
CREATE INDEX IF NOT EXISTS tasks_by_expiry ON tasks (expires);

-- name: create_task_groups
-- Task groups: the schedulerId all their tasks share, and whether sealed.
CREATE TABLE IF NOT EXISTS task_groups (
    task_group_id TEXT PRIMARY KEY,
    scheduler_id TEXT NOT NULL,
    sealed TEXT
);

-- name: create_pending
-- Pending runs, claimed by priority and then first in, first out.
CREATE TABLE IF NOT EXISTS pending (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    task_queue_id TEXT NOT NULL,
    priority_rank INTEGER NOT NULL,
    task_id TEXT NOT NULL,
    run_id INTEGER NOT NULL,
    inserted TEXT NOT NULL,
    UNIQUE (task_id, run_id)
);

-- name: create_pending (postgres)
CREATE TABLE IF NOT EXISTS pending (
    seq BIGSERIAL PRIMARY KEY,
    task_queue_id TEXT NOT NULL,
    priority_rank INTEGER NOT NULL,
    task_id TEXT NOT NULL,
    run_id INTEGER NOT NULL,
    inserted TEXT NOT NULL,
    UNIQUE (task_id, run_id)
);

-- name: create_pending_order
CREATE INDEX IF NOT EXISTS pending_order ON pending (task_queue_id, priority_rank DESC, seq);

-- name: create_claims
-- Running runs and how long their claim lasts.
CREATE TABLE IF NOT EXISTS claims (
    task_id TEXT NOT NULL,
    run_id INTEGER NOT NULL,
    task_queue_id TEXT NOT NULL,
    worker_group TEXT NOT NULL,
    worker_id TEXT NOT NULL,
    taken_until TEXT NOT NULL,
    PRIMARY KEY (task_id, run_id)
);

-- name: create_claims_by_expiry
CREATE INDEX IF NOT EXISTS claims_by_expiry ON claims (taken_until);

-- name: create_dependencies
-- Every declared dependency, for listDependentTasks.
CREATE TABLE IF NOT EXISTS dependencies (
    prerequisite TEXT NOT NULL,
    dependent TEXT NOT NULL,
    PRIMARY KEY (prerequisite, dependent)
);

-- name: create_dependency_waits
-- Dependencies not yet satisfied, of tasks not yet scheduled.
CREATE TABLE IF NOT EXISTS dependency_waits (
    dependent TEXT NOT NULL,
    prerequisite TEXT NOT NULL,
    requires TEXT NOT NULL,
    PRIMARY KEY (dependent, prerequisite)
);

-- name: create_dependency_waits_by_prerequisite
CREATE INDEX IF NOT EXISTS dependency_waits_by_prerequisite ON dependency_waits (prerequisite);
