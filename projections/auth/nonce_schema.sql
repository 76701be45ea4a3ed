-- name: create_hawk_nonces
-- Hawk nonces accepted lately, shared by every process on the database, so
-- that a replayed request is refused whichever process it reaches. The key
-- is a digest of (clientId, ts, nonce); a row is kept until a replay of its
-- request would be refused for its timestamp anyway.
CREATE TABLE IF NOT EXISTS hawk_nonces (
    key BYTEA PRIMARY KEY,
    expires DOUBLE PRECISION NOT NULL
);

-- name: unlogged_hawk_nonces (postgres)
-- Kept out of the write-ahead log: recording a nonce then waits for no disk
-- flush. A database crash empties the table; until the replay window has
-- passed, a request captured before it could be replayed once more.
ALTER TABLE hawk_nonces SET UNLOGGED;

-- name: create_hawk_nonces_by_expiry
CREATE INDEX IF NOT EXISTS hawk_nonces_by_expiry ON hawk_nonces (expires);
