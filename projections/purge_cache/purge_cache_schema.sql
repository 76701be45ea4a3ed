-- name: create_purge_requests
-- Open purge requests: one per worker pool and cache name, with the time caches must be newer than.
CREATE TABLE IF NOT EXISTS purge_requests (
    worker_pool_id TEXT NOT NULL,
    cache_name TEXT NOT NULL,
    purge_before TEXT NOT NULL,
    expires TEXT NOT NULL,
    PRIMARY KEY (worker_pool_id, cache_name)
);

-- name: create_purge_requests_expires_index
-- The time-driven pass asks for requests past their expiry.
CREATE INDEX IF NOT EXISTS purge_requests_expires ON purge_requests (expires);
