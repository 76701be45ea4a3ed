-- Every view table Cairn keeps, created idempotently at start-up. Column
-- types are chosen to mean the same on PostgreSQL and SQLite; JSON is
-- stored as text.

-- name: create_clients
-- Clients as authentication needs them; written by the auth projection.
CREATE TABLE IF NOT EXISTS clients (
    client_id TEXT PRIMARY KEY,
    description TEXT NOT NULL,
    scopes TEXT NOT NULL,
    expires TEXT NOT NULL,
    delete_on_expiration BOOLEAN NOT NULL,
    disabled BOOLEAN NOT NULL,
    sealed_token TEXT NOT NULL,
    created TEXT NOT NULL,
    last_modified TEXT NOT NULL,
    last_rotated TEXT NOT NULL,
    last_date_used TEXT NOT NULL
);

-- name: create_roles
-- Roles and their direct scopes; written by the auth projection.
CREATE TABLE IF NOT EXISTS roles (
    role_id TEXT PRIMARY KEY,
    description TEXT NOT NULL,
    scopes TEXT NOT NULL,
    created TEXT NOT NULL,
    last_modified TEXT NOT NULL
);

-- name: create_auth_epoch
-- A counter of auth changes, so caches know when to reload.
CREATE TABLE IF NOT EXISTS auth_epoch (
    id INTEGER PRIMARY KEY,
    epoch BIGINT NOT NULL
);
