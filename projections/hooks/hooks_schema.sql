-- name: create_hooks
-- Live hooks: their definition (JSON) and next scheduled date; never the trigger token. Written by the hooks projection.
CREATE TABLE IF NOT EXISTS hooks (
    hook_group_id TEXT NOT NULL,
    hook_id TEXT NOT NULL,
    definition TEXT NOT NULL,
    has_bindings BOOLEAN NOT NULL,
    bound_since TEXT NOT NULL,
    next_scheduled_date TEXT,
    PRIMARY KEY (hook_group_id, hook_id)
);

-- name: create_hooks_by_next_date
-- The scheduler asks for the soonest due hook.
CREATE INDEX IF NOT EXISTS hooks_by_next_date ON hooks (next_scheduled_date);

-- name: create_hook_fires
-- Every recorded fire of a live hook, by the version of its Fired event.
CREATE TABLE IF NOT EXISTS hook_fires (
    hook_group_id TEXT NOT NULL,
    hook_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    fired_by TEXT NOT NULL,
    task_id TEXT NOT NULL,
    task_create_time TEXT NOT NULL,
    result TEXT NOT NULL,
    error TEXT NOT NULL,
    PRIMARY KEY (hook_group_id, hook_id, version)
);
