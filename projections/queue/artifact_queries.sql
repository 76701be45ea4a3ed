-- name: insert_artifact
-- An artifact was created.
INSERT INTO artifacts (task_id, run_id, name, storage_type, content_type, content_length, expires, present, details)
VALUES (:task_id, :run_id, :name, :storage_type, :content_type, :content_length, :expires, :present, :details)
ON CONFLICT (task_id, run_id, name) DO UPDATE SET
    storage_type = excluded.storage_type, content_type = excluded.content_type,
    content_length = excluded.content_length, expires = excluded.expires,
    present = excluded.present, details = excluded.details;

-- name: replace_artifact
-- An artifact was replaced by an allowed change (new URL, a link, a later expiry).
UPDATE artifacts SET storage_type = :storage_type, expires = :expires, details = :details
WHERE task_id = :task_id AND run_id = :run_id AND name = :name;

-- name: finish_artifact
-- An object artifact's data was uploaded.
UPDATE artifacts SET present = TRUE WHERE task_id = :task_id AND run_id = :run_id AND name = :name;

-- name: delete_artifact
-- An artifact expired.
DELETE FROM artifacts WHERE task_id = :task_id AND run_id = :run_id AND name = :name;

-- name: get_artifact
-- One artifact of a run.
SELECT * FROM artifacts WHERE task_id = :task_id AND run_id = :run_id AND name = :name;

-- name: list_artifacts
-- A page of the artifacts of a run, in name order.
SELECT * FROM artifacts WHERE task_id = :task_id AND run_id = :run_id AND name > :after
ORDER BY name LIMIT :limit;

-- name: expired_artifacts
-- Artifacts whose expiry has passed.
SELECT task_id, run_id, name FROM artifacts WHERE expires <= :now ORDER BY expires LIMIT :limit;
