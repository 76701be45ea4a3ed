-- The runs analytics view. Every statement applies its event only if the
-- run is where that event leaves from (pending before claimed before
-- resolved), so folding an event a second time changes nothing.

-- name: insert_run_task
-- A task was defined: remember what its runs will share.
INSERT INTO run_tasks (task_id, task_queue_id, task_group_id, project_id, scheduler_id)
VALUES (:task_id, :task_queue_id, :task_group_id, :project_id, :scheduler_id)
ON CONFLICT (task_id) DO NOTHING;

-- name: insert_run
-- A run became pending (or an unscheduled task was resolved, as run 0).
INSERT INTO runs (task_id, run_id, task_queue_id, task_group_id, project_id, scheduler_id, state,
                  reason_created, reason_resolved, scheduled, resolved, total_seconds)
SELECT t.task_id, :run_id, t.task_queue_id, t.task_group_id, t.project_id, t.scheduler_id, :state,
       :reason_created, :reason_resolved, :scheduled, :resolved, CAST(:total_seconds AS DOUBLE PRECISION)
FROM run_tasks t WHERE t.task_id = :task_id
ON CONFLICT (task_id, run_id) DO NOTHING;

-- name: claim_run
-- A pending run was claimed by a worker.
UPDATE runs SET state = 'running', worker_group = :worker_group, worker_id = :worker_id,
    started = CAST(:started AS TEXT),
    pending_seconds = round((julianday(:started) - julianday(scheduled)) * 86400.0, 3)
WHERE task_id = :task_id AND run_id = :run_id AND state = 'pending';

-- name: claim_run (postgres)
UPDATE runs SET state = 'running', worker_group = :worker_group, worker_id = :worker_id,
    started = CAST(:started AS TEXT),
    pending_seconds = round(EXTRACT(EPOCH FROM CAST(CAST(:started AS TEXT) AS timestamptz) - CAST(scheduled AS timestamptz)), 3)
WHERE task_id = :task_id AND run_id = :run_id AND state = 'pending';

-- name: resolve_run
-- A pending or running run was resolved.
UPDATE runs SET state = :state, reason_resolved = :reason_resolved, resolved = CAST(:resolved AS TEXT),
    running_seconds = round((julianday(:resolved) - julianday(started)) * 86400.0, 3),
    total_seconds = round((julianday(:resolved) - julianday(scheduled)) * 86400.0, 3)
WHERE task_id = :task_id AND run_id = :run_id AND state IN ('pending', 'running');

-- name: resolve_run (postgres)
UPDATE runs SET state = :state, reason_resolved = :reason_resolved, resolved = CAST(:resolved AS TEXT),
    running_seconds = round(EXTRACT(EPOCH FROM CAST(CAST(:resolved AS TEXT) AS timestamptz) - CAST(started AS timestamptz)), 3),
    total_seconds = round(EXTRACT(EPOCH FROM CAST(CAST(:resolved AS TEXT) AS timestamptz) - CAST(scheduled AS timestamptz)), 3)
WHERE task_id = :task_id AND run_id = :run_id AND state IN ('pending', 'running');

-- name: runs_page
-- A page of runs in (taskId, runId) order, after the given run.
SELECT * FROM runs WHERE task_id > :after_task_id OR (task_id = :after_task_id AND run_id > :after_run_id)
ORDER BY task_id, run_id LIMIT :limit;
