"""The ``anonymous`` role: what anyone may do without credentials (Taskcluster's RFC 165).

Every request, with credentials or without, holds ``assume:anonymous``, so
the scopes of this role are granted to all. Nothing in code makes anything
public: a fresh deployment creates the role once, at its first start, with
the read scopes a public Taskcluster deployment grants (public artifacts,
task and worker status, index lookups, ...). It is a role like any other:
an operator edits it — or empties it, for a private deployment where every
read needs credentials — and later starts leave it as it is.
"""

from __future__ import annotations

from cairn.domain.aggregate import acting_as
from cairn.domain.auth.model import role_key
from cairn.domain.auth.service import AuthService
from cairn.domain.errors import Conflict
from cairn.domain.event_log import ConcurrentChange, EventLog

ROLE_ID = "anonymous"
#: The actor recorded for the role's creation.
CREATED_BY = "static/cairn"
DESCRIPTION = (
    "Scopes granted to every request, with credentials or without. These are the read scopes of a "
    "public deployment; remove them (e.g. queue:get-artifact:public/*) to require credentials."
)
#: What Taskcluster's public deployments grant the anonymous role.
PUBLIC_SCOPES = (
    "auth:current-scopes",
    "auth:expand-scopes",
    "auth:get-client:*",
    "auth:get-role:*",
    "auth:list-clients",
    "auth:list-roles",
    "github:get-badge:*",
    "github:get-repository:*",
    "github:latest-status:*",
    "github:list-builds",
    "hooks:get:*",
    "hooks:list-hooks:*",
    "hooks:list-last-fires:*",
    "hooks:status:*",
    "index:find-task:*",
    "index:list-namespaces:*",
    "index:list-tasks:*",
    "index:list-tasks-post:*",
    "purge-cache:all-purge-requests",
    "purge-cache:purge-requests:*",
    "queue:get-artifact:public/*",
    "queue:get-provisioner:*",
    "queue:get-task:*",
    "queue:get-worker-type:*",
    "queue:get-worker:*",
    "queue:list-artifacts:*",
    "queue:list-dependent-tasks:*",
    "queue:list-provisioners",
    "queue:list-task-group:*",
    "queue:list-worker-types:*",
    "queue:list-workers:*",
    "queue:pending-count:*",
    "queue:status:*",
    "secrets:list-secrets",
    "worker-manager:get-worker-pool:*",
    "worker-manager:get-worker:*",
    "worker-manager:list-providers",
    "worker-manager:list-worker-pool-errors:*",
    "worker-manager:list-worker-pools",
    "worker-manager:list-workers:*",
)


def create_anonymous_role(log: EventLog, auth: AuthService, kind: str = "public") -> bool:
    """Create the role unless it was ever recorded; True if this call made it.

    ``kind`` is ``public`` (the public read scopes), ``private`` (no scopes)
    or empty (create nothing).
    """
    if not kind or log.get(role_key(ROLE_ID)) is not None:
        return False  # created before: as the operators left it, even deleted
    scopes = list(PUBLIC_SCOPES) if kind == "public" else []
    try:
        with acting_as(CREATED_BY):
            auth.create_role(ROLE_ID, DESCRIPTION, scopes)
    except (Conflict, ConcurrentChange):
        return False  # another process made it first
    return True
