-- name: create_live_logs
-- The logs of running tasks as their workers stream them, one row per run:
-- how many bytes arrived so far, whether the worker has sent the last of
-- them, the token of the run's public/logs/live.log URL, and when it last
-- grew. Data, not events: like object storage, a log is not in the event log.
CREATE TABLE IF NOT EXISTS live_logs (
    task_id TEXT NOT NULL,
    run_id INTEGER NOT NULL,
    token TEXT NOT NULL,
    size BIGINT NOT NULL,
    final BOOLEAN NOT NULL,
    updated DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (task_id, run_id)
);

-- name: create_live_log_chunks
-- The bytes of each live log, in chunks keyed by the offset of their first byte.
CREATE TABLE IF NOT EXISTS live_log_chunks (
    task_id TEXT NOT NULL,
    run_id INTEGER NOT NULL,
    start BIGINT NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (task_id, run_id, start)
);

-- name: create_shell_endpoints
-- Runs whose worker holds a shell connection open to some server process,
-- with that process's last heartbeat.
CREATE TABLE IF NOT EXISTS shell_endpoints (
    task_id TEXT NOT NULL,
    run_id INTEGER NOT NULL,
    connection TEXT NOT NULL,
    heartbeat DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (task_id, run_id)
);

-- name: create_shell_sessions
-- One row per interactive shell a client opened: announced once the server
-- process holding the worker's connection has passed it on, closed when
-- either end has gone.
CREATE TABLE IF NOT EXISTS shell_sessions (
    session_id TEXT PRIMARY KEY,
    task_id TEXT NOT NULL,
    run_id INTEGER NOT NULL,
    rows_count INTEGER NOT NULL,
    cols_count INTEGER NOT NULL,
    announced BOOLEAN NOT NULL,
    closed DOUBLE PRECISION,
    created DOUBLE PRECISION NOT NULL
);

-- name: create_shell_sessions_by_run
CREATE INDEX IF NOT EXISTS shell_sessions_by_run ON shell_sessions (task_id, run_id);

-- name: create_shell_frames
-- What passes through a shell session, each way in order: direction 'in' is
-- from the client to the worker, 'out' the other way. A frame is deleted once
-- the other end has passed it on.
CREATE TABLE IF NOT EXISTS shell_frames (
    session_id TEXT NOT NULL,
    direction TEXT NOT NULL,
    seq BIGINT NOT NULL,
    kind TEXT NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (session_id, direction, seq)
);
