-- name: upsert_index_entry
-- A task was indexed at a path, first or in place of another.
INSERT INTO index_entries (namespace, parent, task_id, rank, data, expires)
VALUES (:namespace, :parent, :task_id, :rank, :data, :expires)
ON CONFLICT (namespace) DO UPDATE SET
    task_id = excluded.task_id, rank = excluded.rank, data = excluded.data, expires = excluded.expires;

-- name: delete_index_entry
-- The entry at a path was deleted or expired.
DELETE FROM index_entries WHERE namespace = :namespace;

-- name: upsert_index_namespace
-- A namespace holds an entry below it until at least :expires.
INSERT INTO index_namespaces (namespace, parent, name, expires)
VALUES (:namespace, :parent, :name, :expires)
ON CONFLICT (namespace) DO UPDATE SET expires = excluded.expires
WHERE index_namespaces.expires < excluded.expires;

-- name: purge_index_namespaces
-- Drop the namespaces that expired by :now.
DELETE FROM index_namespaces WHERE expires <= :now;

-- name: get_index_entry
-- The unexpired entry at a path.
SELECT * FROM index_entries WHERE namespace = :namespace AND expires > :now;

-- name: get_index_entries
-- The unexpired entries at several paths (a JSON array).
SELECT * FROM index_entries
WHERE namespace IN (SELECT value FROM json_each(:namespaces)) AND expires > :now;

-- name: get_index_entries (postgres)
SELECT * FROM index_entries
WHERE namespace = ANY(ARRAY(SELECT jsonb_array_elements_text(:namespaces::jsonb))) AND expires > :now;

-- name: list_index_entries
-- A page of the unexpired entries directly under a namespace, in path order.
SELECT * FROM index_entries
WHERE parent = :parent AND namespace > :after AND expires > :now
ORDER BY namespace LIMIT :limit;

-- name: list_index_namespaces
-- A page of the unexpired namespaces directly under a namespace, in path order.
SELECT * FROM index_namespaces
WHERE parent = :parent AND namespace > :after AND expires > :now
ORDER BY namespace LIMIT :limit;

-- name: expired_index_entries
-- Paths whose entry's expiry has passed.
SELECT namespace FROM index_entries WHERE expires <= :now ORDER BY expires LIMIT :limit;

-- name: all_index_entries
-- Every row of the entries view, to compare it with a rebuild.
SELECT namespace, parent, task_id, rank, data, expires FROM index_entries ORDER BY namespace;

-- name: all_index_namespaces
-- Every row of the namespaces view, to compare it with a rebuild.
SELECT namespace, parent, name, expires FROM index_namespaces ORDER BY namespace;
