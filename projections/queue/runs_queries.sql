-- The runs analytics view. Every write applies an event only if the run
-- is where that event leaves from (pending before claimed before
-- resolved), so folding an event a second time changes nothing.
--
-- A write takes all the rows of a batch at once, as one JSON array (:rows)
-- of objects named after the columns; where several name one row, the
-- first counts, as if each ran on its own in that order. Each write is a
-- statement of its own, so it sees the rows the one before it made.

-- name: insert_run_tasks
-- Tasks were defined: remember what their runs will share.
INSERT INTO run_tasks (task_id, task_queue_id, task_group_id, project_id, scheduler_id)
SELECT r.task_id, r.task_queue_id, r.task_group_id, r.project_id, r.scheduler_id
FROM (SELECT key AS nth, json_extract(value, '$.task_id') AS task_id,
             json_extract(value, '$.task_queue_id') AS task_queue_id,
             json_extract(value, '$.task_group_id') AS task_group_id,
             json_extract(value, '$.project_id') AS project_id,
             json_extract(value, '$.scheduler_id') AS scheduler_id
      FROM json_each(:rows)) AS r
ORDER BY r.nth
ON CONFLICT (task_id) DO NOTHING;

-- name: insert_run_tasks (postgres)
INSERT INTO run_tasks (task_id, task_queue_id, task_group_id, project_id, scheduler_id)
SELECT r.task_id, r.task_queue_id, r.task_group_id, r.project_id, r.scheduler_id
FROM jsonb_array_elements(CAST(:rows AS jsonb)) WITH ORDINALITY AS a(item, nth),
     jsonb_to_record(a.item) AS r(task_id text, task_queue_id text, task_group_id text, project_id text,
                                  scheduler_id text)
ORDER BY a.nth
ON CONFLICT (task_id) DO NOTHING;

-- name: insert_runs
-- Runs became pending (or unscheduled tasks were resolved, as run 0).
INSERT INTO runs (task_id, run_id, task_queue_id, task_group_id, project_id, scheduler_id, state,
                  reason_created, reason_resolved, scheduled, resolved, total_seconds)
SELECT t.task_id, r.run_id, t.task_queue_id, t.task_group_id, t.project_id, t.scheduler_id, r.state,
       r.reason_created, r.reason_resolved, r.scheduled, r.resolved, CAST(r.total_seconds AS DOUBLE PRECISION)
FROM (SELECT key AS nth, json_extract(value, '$.task_id') AS task_id, json_extract(value, '$.run_id') AS run_id,
             json_extract(value, '$.state') AS state, json_extract(value, '$.reason_created') AS reason_created,
             json_extract(value, '$.reason_resolved') AS reason_resolved,
             json_extract(value, '$.scheduled') AS scheduled, json_extract(value, '$.resolved') AS resolved,
             json_extract(value, '$.total_seconds') AS total_seconds
      FROM json_each(:rows)) AS r
JOIN run_tasks t ON t.task_id = r.task_id
ORDER BY r.nth
ON CONFLICT (task_id, run_id) DO NOTHING;

-- name: insert_runs (postgres)
INSERT INTO runs (task_id, run_id, task_queue_id, task_group_id, project_id, scheduler_id, state,
                  reason_created, reason_resolved, scheduled, resolved, total_seconds)
SELECT t.task_id, r.run_id, t.task_queue_id, t.task_group_id, t.project_id, t.scheduler_id, r.state,
       r.reason_created, r.reason_resolved, r.scheduled, r.resolved, r.total_seconds
FROM jsonb_array_elements(CAST(:rows AS jsonb)) WITH ORDINALITY AS a(item, nth),
     jsonb_to_record(a.item) AS r(task_id text, run_id integer, state text, reason_created text,
                                  reason_resolved text, scheduled text, resolved text,
                                  total_seconds double precision)
JOIN run_tasks t ON t.task_id = r.task_id
ORDER BY a.nth
ON CONFLICT (task_id, run_id) DO NOTHING;

-- name: claim_runs
-- Pending runs were claimed by workers.
UPDATE runs SET state = 'running', worker_group = r.worker_group, worker_id = r.worker_id,
    started = CAST(r.started AS TEXT),
    pending_seconds = round((julianday(r.started) - julianday(runs.scheduled)) * 86400.0, 3)
FROM (SELECT json_extract(value, '$.task_id') AS task_id, json_extract(value, '$.run_id') AS run_id,
             json_extract(value, '$.worker_group') AS worker_group, json_extract(value, '$.worker_id') AS worker_id,
             json_extract(value, '$.started') AS started,
             row_number() OVER (PARTITION BY json_extract(value, '$.task_id'), json_extract(value, '$.run_id')
                                ORDER BY key) AS nth
      FROM json_each(:rows)) AS r
WHERE r.nth = 1 AND runs.task_id = r.task_id AND runs.run_id = r.run_id AND runs.state = 'pending';

-- name: claim_runs (postgres)
UPDATE runs SET state = 'running', worker_group = r.worker_group, worker_id = r.worker_id, started = r.started,
    pending_seconds = round(EXTRACT(EPOCH FROM CAST(r.started AS timestamptz) - CAST(runs.scheduled AS timestamptz)), 3)
FROM (SELECT DISTINCT ON (j.task_id, j.run_id) j.*
      FROM jsonb_array_elements(CAST(:rows AS jsonb)) WITH ORDINALITY AS a(item, nth),
           jsonb_to_record(a.item) AS j(task_id text, run_id integer, worker_group text, worker_id text, started text)
      ORDER BY j.task_id, j.run_id, a.nth) AS r
WHERE runs.task_id = r.task_id AND runs.run_id = r.run_id AND runs.state = 'pending';

-- name: resolve_runs
-- Pending or running runs were resolved.
UPDATE runs SET state = r.state, reason_resolved = r.reason_resolved, resolved = CAST(r.resolved AS TEXT),
    running_seconds = round((julianday(r.resolved) - julianday(runs.started)) * 86400.0, 3),
    total_seconds = round((julianday(r.resolved) - julianday(runs.scheduled)) * 86400.0, 3)
FROM (SELECT json_extract(value, '$.task_id') AS task_id, json_extract(value, '$.run_id') AS run_id,
             json_extract(value, '$.state') AS state, json_extract(value, '$.reason_resolved') AS reason_resolved,
             json_extract(value, '$.resolved') AS resolved,
             row_number() OVER (PARTITION BY json_extract(value, '$.task_id'), json_extract(value, '$.run_id')
                                ORDER BY key) AS nth
      FROM json_each(:rows)) AS r
WHERE r.nth = 1 AND runs.task_id = r.task_id AND runs.run_id = r.run_id AND runs.state IN ('pending', 'running');

-- name: resolve_runs (postgres)
UPDATE runs SET state = r.state, reason_resolved = r.reason_resolved, resolved = r.resolved,
    running_seconds = round(EXTRACT(EPOCH FROM CAST(r.resolved AS timestamptz) - CAST(runs.started AS timestamptz)), 3),
    total_seconds = round(EXTRACT(EPOCH FROM CAST(r.resolved AS timestamptz) - CAST(runs.scheduled AS timestamptz)), 3)
FROM (SELECT DISTINCT ON (j.task_id, j.run_id) j.*
      FROM jsonb_array_elements(CAST(:rows AS jsonb)) WITH ORDINALITY AS a(item, nth),
           jsonb_to_record(a.item) AS j(task_id text, run_id integer, state text, reason_resolved text, resolved text)
      ORDER BY j.task_id, j.run_id, a.nth) AS r
WHERE runs.task_id = r.task_id AND runs.run_id = r.run_id AND runs.state IN ('pending', 'running');

-- name: runs_page
-- A page of runs in (taskId, runId) order, after the given run.
SELECT * FROM runs WHERE task_id > :after_task_id OR (task_id = :after_task_id AND run_id > :after_run_id)
ORDER BY task_id, run_id LIMIT :limit;
