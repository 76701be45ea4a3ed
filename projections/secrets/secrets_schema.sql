-- name: create_secrets
-- Live secrets by name, with their expiry; never their value. Written by the secrets projection.
CREATE TABLE IF NOT EXISTS secrets (
    name TEXT PRIMARY KEY,
    expires TEXT NOT NULL,
    created TEXT NOT NULL,
    last_modified TEXT NOT NULL
);

-- name: create_secrets_expires_index
-- The time-driven pass asks for secrets past their expiry.
CREATE INDEX IF NOT EXISTS secrets_expires ON secrets (expires);
