-- The objects view: every object not yet expired, finished or still uploading.

-- name: create_objects
-- One row per object; `upload_id` is NULL once the upload is finished.
CREATE TABLE IF NOT EXISTS objects (
    name TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    upload_id TEXT,
    expires TEXT NOT NULL,
    upload_expires TEXT NOT NULL,
    blob_key TEXT,
    content_type TEXT,
    content_length BIGINT,
    hashes TEXT NOT NULL
);

-- name: create_objects_by_expiry
CREATE INDEX IF NOT EXISTS objects_by_expiry ON objects (expires);

-- name: create_objects_by_upload_expiry
CREATE INDEX IF NOT EXISTS objects_by_upload_expiry ON objects (upload_expires);
