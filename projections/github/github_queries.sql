-- Named queries of the github views.

-- name: insert_github_build
-- A build was created, pending.
INSERT INTO github_builds
    (task_group_id, organization, repository, sha, state, event_type, event_id, installation_id,
     pull_request_number, branch, created, updated)
VALUES (:task_group_id, :organization, :repository, :sha, 'pending', :event_type, :event_id, :installation_id,
        :pull_request_number, :branch, :created, :created)
ON CONFLICT (task_group_id) DO NOTHING;

-- name: set_github_build_state
-- A build moved to another state.
UPDATE github_builds SET state = :state, updated = :updated WHERE task_group_id = :task_group_id;

-- name: insert_github_build_state
-- A build entered a state.
INSERT INTO github_build_states (task_group_id, version, state, changed, actor)
VALUES (:task_group_id, :version, :state, :changed, :actor)
ON CONFLICT (task_group_id, version) DO NOTHING;

-- name: github_builds_page
-- One page of builds, least recently updated first, after (:after_updated, :after_id), matching the filters given.
SELECT * FROM github_builds
WHERE (updated > :after_updated OR (updated = :after_updated AND task_group_id > :after_id))
  AND (:organization IS NULL OR organization = :organization)
  AND (:repository IS NULL OR repository = :repository)
  AND (:sha IS NULL OR sha = :sha)
  AND (:pull_request_number IS NULL OR pull_request_number = :pull_request_number)
ORDER BY updated, task_group_id
LIMIT :limit;

-- name: github_builds_page (postgres)
SELECT * FROM github_builds
WHERE (updated > :after_updated OR (updated = :after_updated AND task_group_id > :after_id))
  AND (CAST(:organization AS TEXT) IS NULL OR organization = :organization)
  AND (CAST(:repository AS TEXT) IS NULL OR repository = :repository)
  AND (CAST(:sha AS TEXT) IS NULL OR sha = :sha)
  AND (CAST(:pull_request_number AS INTEGER) IS NULL OR pull_request_number = :pull_request_number)
ORDER BY updated, task_group_id
LIMIT :limit;

-- name: pending_github_builds
-- The unfinished builds of a repository, for one revision or pull request when given.
SELECT * FROM github_builds
WHERE organization = :organization AND repository = :repository AND state = 'pending'
  AND (:sha IS NULL OR sha = :sha)
  AND (:pull_request_number IS NULL OR pull_request_number = :pull_request_number)
ORDER BY updated, task_group_id;

-- name: pending_github_builds (postgres)
SELECT * FROM github_builds
WHERE organization = :organization AND repository = :repository AND state = 'pending'
  AND (CAST(:sha AS TEXT) IS NULL OR sha = :sha)
  AND (CAST(:pull_request_number AS INTEGER) IS NULL OR pull_request_number = :pull_request_number)
ORDER BY updated, task_group_id;

-- name: latest_github_build
-- The most recently created build of a branch.
SELECT * FROM github_builds
WHERE organization = :organization AND repository = :repository AND branch = :branch
ORDER BY created DESC, task_group_id DESC
LIMIT 1;

-- name: github_build_row
-- One build.
SELECT * FROM github_builds WHERE task_group_id = :task_group_id;

-- name: github_build_states
-- Every state a build entered, in order.
SELECT state, changed, actor FROM github_build_states WHERE task_group_id = :task_group_id ORDER BY version;

-- name: insert_github_request
-- A request to GitHub was recorded; it is due at once.
INSERT INTO github_requests
    (request_id, kind, owner, repository, target, state, attempts, next_attempt, last_error, requested)
VALUES (:request_id, :kind, :owner, :repository, :target, 'requested', 0, :requested, NULL, :requested)
ON CONFLICT (request_id) DO NOTHING;

-- name: end_github_request
-- A request was posted, or failed for good.
UPDATE github_requests
SET state = :state, attempts = :attempts, next_attempt = NULL, last_error = :last_error
WHERE request_id = :request_id;

-- name: retry_github_request
-- An attempt failed; the next one is due at :next_attempt.
UPDATE github_requests
SET attempts = :attempts, next_attempt = :next_attempt, last_error = :last_error
WHERE request_id = :request_id;

-- name: due_github_requests
-- Requests to GitHub whose next attempt is due by :now, the longest-waiting first.
SELECT request_id FROM github_requests
WHERE state = 'requested' AND next_attempt <= :now
ORDER BY next_attempt, request_id
LIMIT :limit;

-- name: next_github_request_due
-- When the soonest requested request to GitHub is due.
SELECT MIN(next_attempt) AS next_attempt FROM github_requests WHERE state = 'requested';

-- name: recent_github_builds
-- The most recently updated builds, newest first, for the web UI.
SELECT * FROM github_builds ORDER BY updated DESC, task_group_id DESC LIMIT :limit;
