-- name: live_log_state
-- A run's live log: its token, size, whether it is complete, when it last grew.
SELECT token, size, final, updated FROM live_logs WHERE task_id = :task_id AND run_id = :run_id;

-- name: open_live_log
-- Start a run's live log, empty, under the worker's token; nothing if it exists.
INSERT INTO live_logs (task_id, run_id, token, size, final, updated)
VALUES (:task_id, :run_id, :token, 0, FALSE, :now)
ON CONFLICT (task_id, run_id) DO NOTHING;

-- name: append_live_log_chunk
-- Store the chunk that starts where the log ends.
INSERT INTO live_log_chunks (task_id, run_id, start, data) VALUES (:task_id, :run_id, :start, :data)
ON CONFLICT (task_id, run_id, start) DO NOTHING;

-- name: grow_live_log
-- Move the end of a live log, if it is still where this append found it.
UPDATE live_logs SET size = :size, final = :final, updated = :now
WHERE task_id = :task_id AND run_id = :run_id AND size = :was;

-- name: live_log_chunks_from
-- The chunks of a live log from byte ``start`` on, in order; no chunk is
-- longer than the distance from ``floor`` to ``start``, so the key bounds the scan.
SELECT start, data FROM live_log_chunks
WHERE task_id = :task_id AND run_id = :run_id AND start > :floor AND start + length(data) > :start
ORDER BY start LIMIT :limit;

-- name: live_log_chunks_from (postgres)
SELECT start, data FROM live_log_chunks
WHERE task_id = :task_id AND run_id = :run_id AND start > :floor AND start + octet_length(data) > :start
ORDER BY start LIMIT :limit;

-- name: quiet_live_logs
-- Live logs that have not grown since ``before``: candidates for removal.
SELECT task_id, run_id, final FROM live_logs WHERE updated < :before ORDER BY updated LIMIT :limit;

-- name: drop_live_log_chunks
DELETE FROM live_log_chunks WHERE task_id = :task_id AND run_id = :run_id;

-- name: drop_live_log
DELETE FROM live_logs WHERE task_id = :task_id AND run_id = :run_id;

-- name: hold_shell_endpoint
-- Note (or renew) that ``connection`` holds the worker's shell connection of a run.
INSERT INTO shell_endpoints (task_id, run_id, connection, heartbeat) VALUES (:task_id, :run_id, :connection, :now)
ON CONFLICT (task_id, run_id) DO UPDATE SET connection = excluded.connection, heartbeat = excluded.heartbeat;

-- name: shell_endpoint
SELECT connection, heartbeat FROM shell_endpoints WHERE task_id = :task_id AND run_id = :run_id;

-- name: release_shell_endpoint
DELETE FROM shell_endpoints WHERE task_id = :task_id AND run_id = :run_id AND connection = :connection;

-- name: open_shell_session
INSERT INTO shell_sessions (session_id, task_id, run_id, rows_count, cols_count, announced, closed, created)
VALUES (:session_id, :task_id, :run_id, :rows, :cols, FALSE, NULL, :now);

-- name: unannounced_shell_sessions
-- Sessions of a run not yet passed on to its worker.
SELECT session_id, rows_count, cols_count FROM shell_sessions
WHERE task_id = :task_id AND run_id = :run_id AND NOT announced AND closed IS NULL ORDER BY created;

-- name: announce_shell_session
UPDATE shell_sessions SET announced = TRUE WHERE session_id = :session_id;

-- name: open_shell_sessions_of_run
SELECT session_id FROM shell_sessions WHERE task_id = :task_id AND run_id = :run_id AND closed IS NULL;

-- name: close_shell_session
UPDATE shell_sessions SET closed = :now WHERE session_id = :session_id AND closed IS NULL;

-- name: add_shell_frame
INSERT INTO shell_frames (session_id, direction, seq, kind, data) VALUES (:session_id, :direction, :seq, :kind, :data);

-- name: shell_frames_after
-- The frames of one direction of a session after ``seq``, in order.
SELECT seq, kind, data FROM shell_frames
WHERE session_id = :session_id AND direction = :direction AND seq > :seq ORDER BY seq LIMIT 200;

-- name: drop_passed_shell_frames
DELETE FROM shell_frames WHERE session_id = :session_id AND direction = :direction AND seq <= :seq;

-- name: closed_shell_sessions
-- Sessions closed before ``before``, or never closed and older than ``stale``.
SELECT session_id FROM shell_sessions
WHERE (closed IS NOT NULL AND closed < :before) OR (closed IS NULL AND created < :stale) LIMIT :limit;

-- name: drop_shell_frames
DELETE FROM shell_frames WHERE session_id = :session_id;

-- name: drop_shell_session
DELETE FROM shell_sessions WHERE session_id = :session_id;

-- name: stale_shell_endpoints
DELETE FROM shell_endpoints WHERE heartbeat < :before;
