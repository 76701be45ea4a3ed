-- Writing the worker views (projections/worker_views.py) and reading them for the API.
-- Times are ISO 8601 UTC text, so comparing text compares times; expiry and
-- activity only ever move forward.

-- name: get_task_queue_row
-- One task queue, expired or not.
SELECT * FROM task_queues WHERE task_queue_id = :task_queue_id;

-- name: task_queue_seen
-- A task queue was used: make it known, and move its expiry and activity
-- forward — a known row only once it has fallen behind: its expiry to
-- :stale_expires or before, or its activity to :stale_active or before.
INSERT INTO task_queues (task_queue_id, provisioner_id, worker_type, expires, last_date_active)
VALUES (:task_queue_id, :provisioner_id, :worker_type, :expires, :last_date_active)
ON CONFLICT (task_queue_id) DO UPDATE SET
    expires = CASE WHEN excluded.expires > task_queues.expires
                   THEN excluded.expires ELSE task_queues.expires END,
    last_date_active = CASE WHEN excluded.last_date_active > task_queues.last_date_active
                            THEN excluded.last_date_active ELSE task_queues.last_date_active END
WHERE task_queues.expires <= :stale_expires OR task_queues.last_date_active <= :stale_active;

-- name: get_queue_worker_row
-- One worker, expired or not.
SELECT * FROM queue_workers
WHERE task_queue_id = :task_queue_id AND worker_group = :worker_group AND worker_id = :worker_id;

-- name: queue_worker_seen
-- A worker claimed, reclaimed or declared: make it known (first claim now),
-- and move its expiry and activity forward, as task_queue_seen does.
INSERT INTO queue_workers (task_queue_id, worker_group, worker_id, first_claim, last_date_active,
                           expires, quarantine_until, quarantine_details)
VALUES (:task_queue_id, :worker_group, :worker_id, :seen, :seen, :expires, NULL, '[]')
ON CONFLICT (task_queue_id, worker_group, worker_id) DO UPDATE SET
    expires = CASE WHEN excluded.expires > queue_workers.expires
                   THEN excluded.expires ELSE queue_workers.expires END,
    last_date_active = CASE WHEN excluded.last_date_active > queue_workers.last_date_active
                            THEN excluded.last_date_active ELSE queue_workers.last_date_active END
WHERE queue_workers.expires <= :stale_expires OR queue_workers.last_date_active <= :stale_active;

-- name: quarantine_queue_worker
-- A worker's quarantine changed; it is kept at least a day from now.
UPDATE queue_workers SET
    quarantine_until = :quarantine_until,
    quarantine_details = :quarantine_details,
    expires = CASE WHEN CAST(:expires AS TEXT) > expires THEN :expires ELSE expires END
WHERE task_queue_id = :task_queue_id AND worker_group = :worker_group AND worker_id = :worker_id;

-- name: insert_worker_recent_task
-- A worker claimed a run.
INSERT INTO worker_recent_tasks (task_queue_id, worker_group, worker_id, task_id, run_id)
VALUES (:task_queue_id, :worker_group, :worker_id, :task_id, :run_id);

-- name: prune_worker_recent_tasks
-- Make room for a worker's newest claimed run: keep only its latest 19, so
-- that with the run inserted next it has 20. Sent before that insert, it
-- sees the same rows whether the two go one after the other or as parts of
-- one statement (``projections/store/combined_writes.py``).
DELETE FROM worker_recent_tasks
WHERE task_queue_id = :task_queue_id AND worker_group = :worker_group AND worker_id = :worker_id
  AND seq <= (SELECT seq FROM worker_recent_tasks
              WHERE task_queue_id = :task_queue_id AND worker_group = :worker_group
                AND worker_id = :worker_id
              ORDER BY seq DESC LIMIT 1 OFFSET 19);

-- name: worker_recent_tasks
-- A worker's latest claimed runs, newest first.
SELECT task_id, run_id FROM worker_recent_tasks
WHERE task_queue_id = :task_queue_id AND worker_group = :worker_group AND worker_id = :worker_id
ORDER BY seq DESC LIMIT 20;

-- name: insert_claimed_run
-- A run was claimed.
INSERT INTO claimed_runs (task_id, run_id, task_queue_id, worker_group, worker_id, claimed)
VALUES (:task_id, :run_id, :task_queue_id, :worker_group, :worker_id, :claimed)
ON CONFLICT (task_id, run_id) DO NOTHING;

-- name: get_claimed_run
-- Who holds a claimed run.
SELECT * FROM claimed_runs WHERE task_id = :task_id AND run_id = :run_id;

-- name: delete_claimed_run
-- A claimed run was resolved.
DELETE FROM claimed_runs WHERE task_id = :task_id AND run_id = :run_id;

-- name: delete_claimed_runs_of
-- A task expired.
DELETE FROM claimed_runs WHERE task_id = :task_id;

-- name: list_provisioners
-- A page of live provisioners: each the union of its live task queues.
SELECT provisioner_id, max(expires) AS expires, max(last_date_active) AS last_date_active
FROM task_queues WHERE expires > :now AND provisioner_id > :after
GROUP BY provisioner_id ORDER BY provisioner_id LIMIT :limit;

-- name: get_provisioner
-- One live provisioner.
SELECT provisioner_id, max(expires) AS expires, max(last_date_active) AS last_date_active
FROM task_queues WHERE expires > :now AND provisioner_id = :provisioner_id
GROUP BY provisioner_id;

-- name: list_worker_types
-- A page of a provisioner's live task queues.
SELECT * FROM task_queues
WHERE provisioner_id = :provisioner_id AND expires > :now AND worker_type > :after
ORDER BY worker_type LIMIT :limit;

-- name: list_task_queues
-- A page of live task queues.
SELECT * FROM task_queues WHERE expires > :now AND task_queue_id > :after
ORDER BY task_queue_id LIMIT :limit;

-- name: get_live_task_queue
-- One live task queue.
SELECT * FROM task_queues WHERE task_queue_id = :task_queue_id AND expires > :now;

-- name: list_queue_workers
-- A page of a task queue's live (or still quarantined) workers with their
-- latest claimed run; `quarantined` is 'any', 'true' or 'false'.
SELECT w.*, r.task_id AS latest_task_id, r.run_id AS latest_run_id
FROM queue_workers w
LEFT JOIN worker_recent_tasks r ON r.seq = (
    SELECT max(x.seq) FROM worker_recent_tasks x
    WHERE x.task_queue_id = w.task_queue_id AND x.worker_group = w.worker_group
      AND x.worker_id = w.worker_id)
WHERE w.task_queue_id = :task_queue_id
  AND (w.expires > :now OR w.quarantine_until > :now)
  AND (CAST(:quarantined AS TEXT) = 'any'
       OR (CAST(:quarantined AS TEXT) = 'true' AND w.quarantine_until > :now)
       OR (CAST(:quarantined AS TEXT) = 'false'
           AND (w.quarantine_until IS NULL OR w.quarantine_until <= :now)))
  AND (w.worker_group > :after_group OR (w.worker_group = :after_group AND w.worker_id > :after_id))
ORDER BY w.worker_group, w.worker_id LIMIT :limit;

-- name: list_pending_tasks
-- A page of a task queue's pending runs, in the order they became pending.
SELECT p.seq, p.task_id, p.run_id, p.inserted, t.definition
FROM pending p JOIN tasks t ON t.task_id = p.task_id
WHERE p.task_queue_id = :task_queue_id AND p.seq > :after
ORDER BY p.seq LIMIT :limit;

-- name: list_claimed_tasks
-- A page of a task queue's claimed runs, oldest claim first.
SELECT c.task_id, c.run_id, c.worker_group, c.worker_id, c.claimed, t.definition
FROM claimed_runs c JOIN tasks t ON t.task_id = c.task_id
WHERE c.task_queue_id = :task_queue_id
  AND (c.claimed > :after_claimed OR (c.claimed = :after_claimed AND c.task_id > :after_task_id))
ORDER BY c.claimed, c.task_id LIMIT :limit;
