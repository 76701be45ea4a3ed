-- The github views: builds with every state they went through, and the
-- requests to GitHub with where each stands; kept in the transaction of
-- their events, rebuilt from them alone.

-- name: create_github_builds
-- One row per build (task group created for a GitHub event), as the builds endpoint lists it.
CREATE TABLE IF NOT EXISTS github_builds (
    task_group_id TEXT PRIMARY KEY,
    organization TEXT NOT NULL,
    repository TEXT NOT NULL,
    sha TEXT NOT NULL,
    state TEXT NOT NULL,
    event_type TEXT NOT NULL,
    event_id TEXT NOT NULL,
    installation_id BIGINT,
    pull_request_number INTEGER,
    branch TEXT,
    created TEXT NOT NULL,
    updated TEXT NOT NULL
);

-- name: create_github_builds_by_updated
CREATE INDEX IF NOT EXISTS github_builds_by_updated ON github_builds (updated, task_group_id);

-- name: create_github_builds_by_repository
CREATE INDEX IF NOT EXISTS github_builds_by_repository ON github_builds (organization, repository, updated);

-- name: create_github_builds_by_branch
CREATE INDEX IF NOT EXISTS github_builds_by_branch ON github_builds (organization, repository, branch, created);

-- name: create_github_build_states
-- Every state a build entered, by the version of the event that moved it there, and who moved it.
CREATE TABLE IF NOT EXISTS github_build_states (
    task_group_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    state TEXT NOT NULL,
    changed TEXT NOT NULL,
    actor TEXT NOT NULL,
    PRIMARY KEY (task_group_id, version)
);

-- name: create_github_requests
-- One row per request to GitHub (commit status, comment); a requested one is due at `next_attempt`.
CREATE TABLE IF NOT EXISTS github_requests (
    request_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    owner TEXT NOT NULL,
    repository TEXT NOT NULL,
    target TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt TEXT,
    last_error TEXT,
    requested TEXT NOT NULL
);

-- name: create_github_requests_due
CREATE INDEX IF NOT EXISTS github_requests_due ON github_requests (next_attempt) WHERE state = 'requested';
