-- name: record_nonce
-- Record a nonce's first use; no row changes if it was used already.
INSERT INTO hawk_nonces (key, expires) VALUES (:key, :expires)
ON CONFLICT (key) DO NOTHING;

-- name: record_nonce_in_command
-- Record a nonce in a command's transaction: a replay fails on the key,
-- which aborts the command.
INSERT INTO hawk_nonces (key, expires) VALUES (:key, :expires);

-- name: prune_nonces
-- Forget nonces whose requests are past their replay window.
DELETE FROM hawk_nonces WHERE expires <= :now;
