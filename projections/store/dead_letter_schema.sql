-- name: create_dead_letters
-- The events a consumer set aside after its retries failed: one row per consumer and log position.
CREATE TABLE IF NOT EXISTS dead_letters (
    consumer TEXT NOT NULL,
    position BIGINT NOT NULL,
    originator_id TEXT NOT NULL,
    originator_version BIGINT NOT NULL,
    event_type TEXT NOT NULL,
    reason TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    failed_at TEXT NOT NULL,
    PRIMARY KEY (consumer, position)
);
