-- The artifacts view: every unexpired artifact of every run, kept in the
-- transaction of the task events that create, change and expire them.

-- name: create_artifacts
-- One row per artifact; `details` is the storage-specific part, as JSON.
CREATE TABLE IF NOT EXISTS artifacts (
    task_id TEXT NOT NULL,
    run_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    storage_type TEXT NOT NULL,
    content_type TEXT NOT NULL,
    content_length BIGINT,
    expires TEXT NOT NULL,
    present BOOLEAN NOT NULL,
    details TEXT NOT NULL,
    PRIMARY KEY (task_id, run_id, name)
);

-- name: create_artifacts_by_expiry
CREATE INDEX IF NOT EXISTS artifacts_by_expiry ON artifacts (expires);
