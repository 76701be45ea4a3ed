-- name: upsert_task
-- A task's row, as its aggregate now stands.
INSERT INTO tasks (task_id, task_group_id, scheduler_id, project_id, task_queue_id, state, resolved,
                   priority, deadline, expires, definition, status)
VALUES (:task_id, :task_group_id, :scheduler_id, :project_id, :task_queue_id, :state, :resolved,
        :priority, :deadline, :expires, :definition, :status)
ON CONFLICT (task_id) DO UPDATE SET
    state = excluded.state, resolved = excluded.resolved, priority = excluded.priority,
    definition = excluded.definition, status = excluded.status;

-- name: delete_task
-- A task expired: it leaves every view.
DELETE FROM tasks WHERE task_id = :task_id;

-- name: get_task_row
-- One task's row.
SELECT * FROM tasks WHERE task_id = :task_id;

-- name: lock_task_row
-- Lock a task's row before deciding on its resolution, so that a dependent
-- being created at the same time either sees the resolution or is seen by it;
-- with the task aggregate's stored version (see projections/store/aggregate_cache.py).
-- On PostgreSQL its group's row is locked first: every transaction that
-- locks a group's row and a task's takes the group's first (the filter's
-- subquery runs before the task's row is returned and locked), so a report
-- cannot hold the task while it waits for a createTask holding the group.
SELECT task_id, state,
       (SELECT max(originator_version) FROM stored_events WHERE originator_id = 'task/' || task_id) AS version
FROM tasks WHERE task_id = :task_id;

-- name: lock_task_row (postgres)
WITH task_group AS MATERIALIZED (
    SELECT 1 FROM task_groups
    WHERE task_group_id = (SELECT task_group_id FROM tasks WHERE task_id = :task_id)
    FOR UPDATE)
SELECT task_id, state,
       (SELECT max(originator_version) FROM cairn_events WHERE originator_id = 'task/' || task_id) AS version
FROM tasks WHERE task_id = :task_id AND (SELECT count(*) FROM task_group) >= 0 FOR UPDATE;

-- name: share_task_rows
-- The prerequisites of a new task, locked against concurrent resolution.
SELECT task_id, state, expires FROM tasks WHERE task_id IN (SELECT value FROM json_each(:ids));

-- name: share_task_rows (postgres)
SELECT task_id, state, expires FROM tasks
WHERE task_id = ANY(ARRAY(SELECT jsonb_array_elements_text(:ids::jsonb))) FOR SHARE;

-- name: task_rows
-- The rows of several tasks.
SELECT * FROM tasks WHERE task_id IN (SELECT value FROM json_each(:ids));

-- name: task_rows (postgres)
SELECT * FROM tasks WHERE task_id = ANY(ARRAY(SELECT jsonb_array_elements_text(:ids::jsonb)));

-- name: list_group_tasks
-- A page of the tasks of a group, in taskId order.
SELECT * FROM tasks WHERE task_group_id = :task_group_id AND task_id > :after
ORDER BY task_id LIMIT :limit;

-- name: group_summary
-- A group's expiry (its latest task's) and how many tasks it has.
SELECT max(expires) AS expires, count(*) AS tasks FROM tasks WHERE task_group_id = :task_group_id;

-- name: unresolved_group_task_ids
-- The unresolved tasks of a group, to cancel them.
SELECT task_id FROM tasks WHERE task_group_id = :task_group_id AND NOT resolved ORDER BY task_id;

-- name: group_task_ids
-- Every task of a group.
SELECT task_id FROM tasks WHERE task_group_id = :task_group_id ORDER BY task_id;

-- name: past_deadline
-- Unresolved tasks whose deadline has passed.
SELECT task_id FROM tasks WHERE NOT resolved AND deadline <= :now ORDER BY deadline LIMIT :limit;

-- name: past_expiry
-- Tasks whose expiry has passed.
SELECT task_id FROM tasks WHERE expires <= :now ORDER BY expires LIMIT :limit;

-- name: insert_task_group
-- A new task group.
INSERT INTO task_groups (task_group_id, scheduler_id, sealed) VALUES (:task_group_id, :scheduler_id, NULL)
ON CONFLICT (task_group_id) DO NOTHING;

-- name: seal_task_group
-- A task group was sealed.
UPDATE task_groups SET sealed = :sealed WHERE task_group_id = :task_group_id;

-- name: get_task_group
-- One task group.
SELECT * FROM task_groups WHERE task_group_id = :task_group_id;

-- name: share_task_group
-- A group about to take a new task, locked against a concurrent seal.
SELECT * FROM task_groups WHERE task_group_id = :task_group_id;

-- name: share_task_group (postgres)
SELECT * FROM task_groups WHERE task_group_id = :task_group_id FOR SHARE;

-- name: lock_task_group
-- A group whose resolution is being decided, with its aggregate's stored version.
SELECT *,
       (SELECT max(originator_version) FROM stored_events WHERE originator_id = 'task-group/' || task_group_id) AS version
FROM task_groups WHERE task_group_id = :task_group_id;

-- name: lock_task_group (postgres)
SELECT *,
       (SELECT max(originator_version) FROM cairn_events WHERE originator_id = 'task-group/' || task_group_id) AS version
FROM task_groups WHERE task_group_id = :task_group_id FOR UPDATE;

-- name: insert_pending
-- A run became pending.
INSERT INTO pending (task_queue_id, priority_rank, task_id, run_id, inserted)
VALUES (:task_queue_id, :priority_rank, :task_id, :run_id, :inserted)
ON CONFLICT (task_id, run_id) DO NOTHING;

-- name: notify_pending
-- Wake the claimWork calls waiting on a task queue (PostgreSQL only): the
-- payload is the task queue, after the sending process's token and a space.
SELECT 1;

-- name: notify_pending (postgres)
SELECT pg_notify('cairn_pending', :payload);

-- name: delete_pending
-- A task's pending run was claimed, resolved or expired.
DELETE FROM pending WHERE task_id = :task_id;

-- name: reprioritise_pending
-- A pending task's priority changed.
UPDATE pending SET priority_rank = :priority_rank WHERE task_id = :task_id;

-- name: take_pending
-- The next pending runs of a queue, locked so no other claimer takes them;
-- with the stored versions of their task aggregates and of the claiming
-- worker's (see projections/store/aggregate_cache.py): one read decides a claim.
SELECT task_id, run_id,
       (SELECT max(originator_version) FROM stored_events WHERE originator_id = 'task/' || task_id) AS version,
       (SELECT max(originator_version) FROM stored_events WHERE originator_id = :worker_key) AS worker_version
FROM pending WHERE task_queue_id = :task_queue_id
ORDER BY priority_rank DESC, seq LIMIT :count;

-- name: take_pending (postgres)
-- The task's row is key-share locked too, and a run whose task is locked for
-- update is passed over: a cancel or a deadline resolving that task holds its
-- row, then deletes the pending run, while the claim would hold the pending
-- run, then update the task's row. Locked in this order, neither waits on the
-- other while holding what the other needs. (A key-share lock does not stop a
-- new dependent sharing the row.)
SELECT p.task_id, p.run_id,
       (SELECT max(originator_version) FROM cairn_events WHERE originator_id = 'task/' || p.task_id) AS version,
       (SELECT max(originator_version) FROM cairn_events WHERE originator_id = :worker_key) AS worker_version
FROM pending p JOIN tasks t ON t.task_id = p.task_id
WHERE p.task_queue_id = :task_queue_id
ORDER BY p.priority_rank DESC, p.seq LIMIT :count
FOR UPDATE OF p SKIP LOCKED FOR KEY SHARE OF t SKIP LOCKED;

-- name: count_pending
-- How many runs of a queue are pending.
SELECT count(*) AS n FROM pending WHERE task_queue_id = :task_queue_id;

-- name: insert_claim
-- A run was claimed.
INSERT INTO claims (task_id, run_id, task_queue_id, worker_group, worker_id, taken_until)
VALUES (:task_id, :run_id, :task_queue_id, :worker_group, :worker_id, :taken_until)
ON CONFLICT (task_id, run_id) DO UPDATE SET taken_until = excluded.taken_until;

-- name: extend_claim
-- A claim was renewed.
UPDATE claims SET taken_until = :taken_until WHERE task_id = :task_id AND run_id = :run_id;

-- name: delete_claims
-- A task's running run was resolved, or the task expired.
DELETE FROM claims WHERE task_id = :task_id;

-- name: expired_claims
-- Claims that lapsed without a reclaim.
SELECT task_id, run_id FROM claims WHERE taken_until <= :now ORDER BY taken_until LIMIT :limit;

-- name: count_claimed
-- How many runs of a queue are running.
SELECT count(*) AS n FROM claims WHERE task_queue_id = :task_queue_id;

-- name: insert_dependency
-- A task declared a dependency.
INSERT INTO dependencies (prerequisite, dependent) VALUES (:prerequisite, :dependent)
ON CONFLICT (prerequisite, dependent) DO NOTHING;

-- name: insert_dependency_wait
-- A new task waits for one of its dependencies.
INSERT INTO dependency_waits (dependent, prerequisite, requires)
VALUES (:dependent, :prerequisite, :requires)
ON CONFLICT (dependent, prerequisite) DO NOTHING;

-- name: delete_waits_of
-- A task was scheduled or expired: it waits for nothing any more.
DELETE FROM dependency_waits WHERE dependent = :dependent;

-- name: delete_satisfied_waits
-- A prerequisite resolved: the waits it satisfies end.
DELETE FROM dependency_waits
WHERE prerequisite = :prerequisite AND (requires = 'all-resolved' OR :completed);

-- name: lock_group_of_task
-- The group of a task whose resolution is being decided, locked, with the
-- group aggregate's stored version; on PostgreSQL the rows of the tasks
-- still waiting for it are locked too (in one order, after the group's), so
-- that of two of a dependent's prerequisites resolving at once, the second
-- waits for the first to commit and then sees that the dependent waits for
-- nothing else. This statement must run after the task's row is locked: a
-- dependent created meanwhile is seen only by a snapshot taken after that.
SELECT g.*,
       (SELECT max(originator_version) FROM stored_events WHERE originator_id = 'task-group/' || g.task_group_id) AS version
FROM task_groups g WHERE g.task_group_id = (SELECT task_group_id FROM tasks WHERE task_id = :task_id);

-- name: lock_group_of_task (postgres)
SELECT g.*,
       (SELECT max(originator_version) FROM cairn_events WHERE originator_id = 'task-group/' || g.task_group_id) AS version,
       (SELECT count(*) FROM (
           SELECT 1 FROM tasks d
           WHERE d.task_id IN (SELECT w.dependent FROM dependency_waits w WHERE w.prerequisite = :task_id)
           ORDER BY d.task_id FOR UPDATE) AS waiting) AS dependents_locked
FROM task_groups g WHERE g.task_group_id = (SELECT task_group_id FROM tasks WHERE task_id = :task_id)
FOR UPDATE OF g;

-- name: resolution_reads
-- What a task's resolution decides on, read once its group's row is locked:
-- the dependents it leaves waiting for nothing else (a JSON array), and how
-- many other tasks of its group are unresolved and when the group expires
-- (with its latest-expiring task).
SELECT (SELECT json_group_array(w.dependent) FROM dependency_waits w
        WHERE w.prerequisite = :task_id AND (w.requires = 'all-resolved' OR :completed)
          AND NOT EXISTS (
              SELECT 1 FROM dependency_waits o
              WHERE o.dependent = w.dependent AND o.prerequisite <> :task_id)) AS ready,
       coalesce(sum(CASE WHEN NOT t.resolved AND t.task_id <> :task_id THEN 1 ELSE 0 END), 0) AS unresolved,
       max(t.expires) AS expires
FROM tasks t WHERE t.task_group_id = (SELECT task_group_id FROM tasks WHERE task_id = :task_id);

-- name: resolution_reads (postgres)
SELECT (SELECT coalesce(jsonb_agg(w.dependent), '[]') FROM dependency_waits w
        WHERE w.prerequisite = :task_id AND (w.requires = 'all-resolved' OR :completed)
          AND NOT EXISTS (
              SELECT 1 FROM dependency_waits o
              WHERE o.dependent = w.dependent AND o.prerequisite <> :task_id)) AS ready,
       coalesce(sum(CASE WHEN NOT t.resolved AND t.task_id <> :task_id THEN 1 ELSE 0 END), 0) AS unresolved,
       max(t.expires) AS expires
FROM tasks t WHERE t.task_group_id = (SELECT task_group_id FROM tasks WHERE task_id = :task_id);

-- name: list_dependents
-- A page of the tasks that depend on one task.
SELECT dependent FROM dependencies WHERE prerequisite = :prerequisite AND dependent > :after
ORDER BY dependent LIMIT :limit;

-- name: delete_dependencies_of
-- An expired task's own dependency rows.
DELETE FROM dependencies WHERE dependent = :dependent;
