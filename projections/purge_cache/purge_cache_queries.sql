-- name: upsert_purge_request
-- A purge request made, or made again.
INSERT INTO purge_requests (worker_pool_id, cache_name, purge_before, expires)
VALUES (:worker_pool_id, :cache_name, :purge_before, :expires)
ON CONFLICT (worker_pool_id, cache_name) DO UPDATE SET purge_before = excluded.purge_before, expires = excluded.expires;

-- name: delete_purge_request
-- A purge request lapsed.
DELETE FROM purge_requests WHERE worker_pool_id = :worker_pool_id AND cache_name = :cache_name;

-- name: list_purge_requests
-- Open purge requests of every worker pool, in (worker pool, cache name) order, after a pair.
SELECT worker_pool_id, cache_name, purge_before FROM purge_requests
WHERE expires > :now AND (worker_pool_id > :after_pool OR (worker_pool_id = :after_pool AND cache_name > :after_cache))
ORDER BY worker_pool_id, cache_name LIMIT :limit;

-- name: worker_pool_purge_requests
-- Open purge requests of one worker pool made at or after a time, by cache name.
SELECT worker_pool_id, cache_name, purge_before FROM purge_requests
WHERE worker_pool_id = :worker_pool_id AND expires > :now AND purge_before >= :since
ORDER BY cache_name;

-- name: expired_purge_requests
-- Purge requests past their expiry, for the time-driven pass.
SELECT worker_pool_id, cache_name FROM purge_requests WHERE expires <= :now ORDER BY expires LIMIT :limit;
