-- name: upsert_hook
-- A hook created, created again after removal, or redefined.
INSERT INTO hooks (hook_group_id, hook_id, definition, has_bindings, bound_since, next_scheduled_date)
VALUES (:hook_group_id, :hook_id, :definition, :has_bindings, :bound_since, :next_scheduled_date)
ON CONFLICT (hook_group_id, hook_id) DO UPDATE SET
    definition = excluded.definition, has_bindings = excluded.has_bindings, bound_since = excluded.bound_since,
    next_scheduled_date = excluded.next_scheduled_date;

-- name: set_hook_next_date
-- A fire moved the hook's schedule on.
UPDATE hooks SET next_scheduled_date = :next_scheduled_date WHERE hook_group_id = :hook_group_id AND hook_id = :hook_id;

-- name: delete_hook
-- A hook removed.
DELETE FROM hooks WHERE hook_group_id = :hook_group_id AND hook_id = :hook_id;

-- name: delete_hook_fires
-- A removed hook's fires go with it, as Taskcluster's do.
DELETE FROM hook_fires WHERE hook_group_id = :hook_group_id AND hook_id = :hook_id;

-- name: insert_hook_fire
-- A hook fired.
INSERT INTO hook_fires (hook_group_id, hook_id, version, fired_by, task_id, task_create_time, result, error)
VALUES (:hook_group_id, :hook_id, :version, :fired_by, :task_id, :task_create_time, :result, :error);

-- name: hook_groups
-- Every hook group with at least one hook.
SELECT DISTINCT hook_group_id FROM hooks ORDER BY hook_group_id;

-- name: hooks_in_group
-- The hooks of one group, in id order.
SELECT hook_group_id, hook_id, definition, next_scheduled_date FROM hooks
WHERE hook_group_id = :hook_group_id ORDER BY hook_id;

-- name: get_hook_row
-- One hook.
SELECT hook_group_id, hook_id, definition, next_scheduled_date FROM hooks
WHERE hook_group_id = :hook_group_id AND hook_id = :hook_id;

-- name: hooks_with_bindings
-- Every hook that fires on messages, and since when its bindings stand.
SELECT hook_group_id, hook_id, definition, bound_since FROM hooks WHERE has_bindings ORDER BY hook_group_id, hook_id;

-- name: due_hooks
-- Hooks whose next scheduled date has come.
SELECT hook_group_id, hook_id FROM hooks
WHERE next_scheduled_date IS NOT NULL AND next_scheduled_date <= :now
ORDER BY next_scheduled_date LIMIT :limit;

-- name: soonest_hook_date
-- The earliest next scheduled date of any hook.
SELECT MIN(next_scheduled_date) AS soonest FROM hooks;

-- name: hook_fires
-- A hook's fires, newest first, before a version.
SELECT hook_group_id, hook_id, version, fired_by, task_id, task_create_time, result, error FROM hook_fires
WHERE hook_group_id = :hook_group_id AND hook_id = :hook_id AND version < :before
ORDER BY version DESC LIMIT :limit;
