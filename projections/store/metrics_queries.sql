-- name: metrics_snapshot (sqlite)
-- Everything /metrics reports of the database, in one round trip: runs pending
-- and running (claimed) per task queue, each consumer's position and the events
-- it set aside (dead letters), and the head
-- of the log, as (kind, name, value) rows.
SELECT 'pending' AS kind, task_queue_id AS name, COUNT(*) AS value FROM pending GROUP BY task_queue_id
UNION ALL SELECT 'running', task_queue_id, COUNT(*) FROM claims GROUP BY task_queue_id
UNION ALL SELECT 'position', name, position FROM consumer_positions
UNION ALL SELECT 'dead-letters', consumer, COUNT(*) FROM dead_letters GROUP BY consumer
UNION ALL SELECT 'head', '', COALESCE(MAX(rowid), 0) FROM stored_events;

-- name: metrics_snapshot (postgres)
SELECT 'pending' AS kind, task_queue_id AS name, COUNT(*) AS value FROM pending GROUP BY task_queue_id
UNION ALL SELECT 'running', task_queue_id, COUNT(*) FROM claims GROUP BY task_queue_id
UNION ALL SELECT 'position', name, position FROM consumer_positions
UNION ALL SELECT 'dead-letters', consumer, COUNT(*) FROM dead_letters GROUP BY consumer
UNION ALL SELECT 'head', '', COALESCE(MAX(notification_id), 0) FROM cairn_events;
