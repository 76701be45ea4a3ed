-- name: insert_object
-- An object's upload started.
INSERT INTO objects (name, project_id, upload_id, expires, upload_expires, hashes)
VALUES (:name, :project_id, :upload_id, :expires, :upload_expires, '{}')
ON CONFLICT (name) DO NOTHING;

-- name: object_data_received
-- An object's data arrived.
UPDATE objects SET blob_key = :blob_key, content_type = :content_type, content_length = :content_length
WHERE name = :name;

-- name: finish_object
-- An object's upload was finished, with these hashes.
UPDATE objects SET upload_id = NULL, hashes = :hashes WHERE name = :name;

-- name: delete_object
-- An object expired.
DELETE FROM objects WHERE name = :name;

-- name: get_object
-- One object.
SELECT * FROM objects WHERE name = :name;

-- name: expired_objects
-- Objects past their expiry, and uploads left unfinished past theirs.
SELECT name FROM objects
WHERE expires <= :now OR (upload_id IS NOT NULL AND upload_expires <= :now)
ORDER BY name LIMIT :limit;
