-- name: upsert_secret
-- A secret set: created, replaced, or set again after removal.
INSERT INTO secrets (name, expires, created, last_modified)
VALUES (:name, :expires, :modified, :modified)
ON CONFLICT (name) DO UPDATE SET expires = excluded.expires, last_modified = excluded.last_modified;

-- name: delete_secret
-- A secret removed or expired.
DELETE FROM secrets WHERE name = :name;

-- name: list_secrets
-- Names of secrets not yet expired, in name order, after a name.
SELECT name FROM secrets WHERE expires > :now AND name > :after ORDER BY name LIMIT :limit;

-- name: expired_secrets
-- Names of secrets whose expiry has passed, for the time-driven pass.
SELECT name FROM secrets WHERE expires <= :now ORDER BY expires LIMIT :limit;

-- name: list_secret_expiries
-- Names of secrets not yet expired with their expiry (never a value), in name order, after a name.
SELECT name, expires FROM secrets WHERE expires > :now AND name > :after ORDER BY name LIMIT :limit;
