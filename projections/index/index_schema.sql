-- The index views: what is indexed at each path, and the namespaces above
-- them; kept in the transaction of the IndexedTask events, and rebuilt from
-- those events alone.

-- name: create_index_entries
-- One row per indexed path; `parent` is the path without its last name
-- ('' at the root), `data` the entry's JSON object.
CREATE TABLE IF NOT EXISTS index_entries (
    namespace TEXT PRIMARY KEY,
    parent TEXT NOT NULL,
    task_id TEXT NOT NULL,
    rank DOUBLE PRECISION NOT NULL,
    data TEXT NOT NULL,
    expires TEXT NOT NULL
);

-- name: create_index_entries_by_parent
CREATE INDEX IF NOT EXISTS index_entries_by_parent ON index_entries (parent, namespace);

-- name: create_index_entries_by_expiry
CREATE INDEX IF NOT EXISTS index_entries_by_expiry ON index_entries (expires);

-- name: create_index_namespaces
-- One row per namespace that ever held an entry below it; it expires (and is
-- no longer listed) after the last entry inserted under it, rounded up to
-- the next midnight UTC.
CREATE TABLE IF NOT EXISTS index_namespaces (
    namespace TEXT PRIMARY KEY,
    parent TEXT NOT NULL,
    name TEXT NOT NULL,
    expires TEXT NOT NULL
);

-- name: create_index_namespaces_by_parent
CREATE INDEX IF NOT EXISTS index_namespaces_by_parent ON index_namespaces (parent, name);

-- name: create_index_namespaces_by_expiry
CREATE INDEX IF NOT EXISTS index_namespaces_by_expiry ON index_namespaces (expires);
