"""The github service: CI from GitHub — webhooks in, task groups created, results reported back.

Builds are a projection of the log: each is a task group created for a
delivery, with every state it went through. createStatus and createComment
are recorded as requests and posted to GitHub by a consumer (at least once,
retried), so the call answers at once and nothing asked for is lost;
``ResourceNotFound`` when the GitHub App is not installed for the owner.
"""

from __future__ import annotations

import re
from typing import Any

from cairn.api.call import Call
from cairn.api.endpoints import Endpoints, Service
from cairn.api.errors import InputError, InsufficientScopes, InvalidRequestArguments, ResourceNotFound
from cairn.api.github import badges, render, webhook
from cairn.api.github.context import GithubContext
from cairn.api.github.names import ISSUE, OWNER_REPO, SHA
from cairn.api.pagination import page
from cairn.domain.errors import NotFound
from cairn.domain.timestamps import utcnow
from cairn.projections.github.views import build_json
from cairn.scoped_queue import Refused

github = Service(
    name="github",
    title="GitHub Service",
    description=(
        "The github service creates task groups in response to GitHub events, as a repository's "
        "`.taskcluster.yml` describes them, and reports their results to GitHub as commit statuses "
        "or check runs. Every delivery, build and request to GitHub is an event in Cairn's log."
    ),
)
endpoints = Endpoints()

_IDENTIFIER = re.compile(r"[a-zA-Z0-9\-_%]*")
#: A pull request number, as storage holds it (a 32-bit integer, so at most nine digits).
_NUMBER = re.compile(r"[0-9]{0,9}")
#: What cancelBuilds may do with the queue, as Taskcluster-GitHub limits its own client.
CANCEL_SCOPES = (
    "assume:repo:github.com/{organization}/{repository}:*",
    "queue:seal-task-group:taskcluster-github/*",
    "queue:cancel-task-group:taskcluster-github/*",
)


def _query(call: Call[GithubContext], name: str, pattern: re.Pattern[str]) -> str | None:
    value = call.query.get(name)
    if value is not None and not pattern.fullmatch(value):
        raise InvalidRequestArguments(f"Query parameter {name}={value!r} must match {pattern.pattern}")
    return value or None


def _filters(call: Call[GithubContext], organization: str | None, repository: str | None) -> dict[str, Any]:
    sha = call.query.get("sha") or None
    pull_request = _query(call, "pullRequest", _NUMBER)
    if repository and not organization:
        raise InputError("Must provide `organization` if querying `repository`")
    if sha and not repository:
        raise InputError("Must provide `repository` if querying `sha`")
    if pull_request and not repository:
        raise InputError("Must provide `repository` if querying `pullRequest`")
    return {"sha": sha, "pull_request_number": int(pull_request) if pull_request else None}


@endpoints.endpoint(
    "builds", "GET", "/builds", title="List of Builds", category="Github Service", scopes="github:list-builds",
    output="build-list", query=("continuationToken", "limit", "organization", "repository", "sha", "pullRequest"),
)
def builds(call: Call[GithubContext]) -> dict[str, Any]:
    """A page of the builds run for GitHub events, least recently updated first; filtered by
    organization, repository, revision (``sha``) and pull request number."""
    organization = _query(call, "organization", _IDENTIFIER)
    repository = _query(call, "repository", _IDENTIFIER)
    filters = _filters(call, organization, repository)
    limit, after = page.bounds(call)
    rows = call.context.reads.builds(
        page.pair(after, "/"), limit + 1, organization=organization, repository=repository, **filters
    )
    rows, more = page.cut(rows, limit, lambda r: f"{r['updated']}/{r['task_group_id']}")
    return {"builds": [build_json(r) for r in rows], **more}


@endpoints.endpoint(
    "cancelBuilds", "POST", "/builds/<owner>/<repo>/cancel", title="Cancel repository builds",
    category="Github Service", scopes="github:cancel-builds:<owner>:<repo>", output="build-list",
    query=("sha", "pullRequest"), params=OWNER_REPO,
)
def cancel_builds(call: Call[GithubContext]) -> dict[str, Any]:
    """Cancel the task groups of every unfinished build of the repository, for one revision or pull
    request if given; ``ResourceNotFound`` when there is none. A build whose task group was never
    created (creating its tasks failed) is cancelled too, where Taskcluster answers InputError
    and leaves it pending for good."""
    context = call.context
    owner, repo = call.params["owner"], call.params["repo"]
    filters = _filters(call, owner, repo)
    pending = context.reads.pending_builds(owner, repo, **filters)
    if not pending:
        raise ResourceNotFound("No cancellable builds found")
    scopes = [s.format(organization=owner, repository=repo) for s in CANCEL_SCOPES]
    now = utcnow()
    for row in pending:
        group = row["task_group_id"]
        try:
            context.scoped_queue.cancel_task_group(scopes, group, now, call.client_id, who="The github service")
        except Refused as e:
            raise (InsufficientScopes if e.code == "InsufficientScopes" else InputError)(e.message) from None
        except NotFound:
            pass  # its tasks were never created: nothing runs, the build is cancelled all the same
        context.service.cancel_build(group, now)
    cancelled = [context.reads.build(row["task_group_id"]) or row for row in pending]
    return {"builds": [build_json(row) for row in cancelled]}


@endpoints.endpoint(
    "repository", "GET", "/repository/<owner>/<repo>", title="Get Repository Info", category="Github Service",
    scopes="github:get-repository:<owner>:<repo>", output="repository", stability="experimental",
    params=OWNER_REPO,
)
def repository(call: Call[GithubContext]) -> dict[str, Any]:
    """Whether the GitHub App is installed for the repository, as its installation events and
    deliveries tell."""
    return {"installed": call.context.service.repository_installed(call.params["owner"], call.params["repo"])}


def _installed(call: Call[GithubContext], what: str) -> None:
    if call.context.service.installation_id(call.params["owner"]) is None:
        raise ResourceNotFound(f"{what} not found: the GitHub App is not installed for {call.params['owner']}")


@endpoints.endpoint(
    "createStatus", "POST", "/repository/<owner>/<repo>/statuses/<sha>",
    title="Post a status against a given changeset", category="Github Service",
    scopes="github:create-status:<owner>/<repo>", input="create-status", stability="experimental",
    params=SHA,
)
def create_status(call: Call[GithubContext]) -> dict[str, Any]:
    """Set a commit status on a revision (GitHub's "create a commit status"): recorded now, posted
    to GitHub by a consumer right after."""
    _installed(call, "Installation")
    params = {k: v for k, v in call.body.items() if k in ("state", "target_url", "description")}
    params["context"] = call.body.get("context") or "default"
    owner, repo = call.params["owner"], call.params["repo"]
    call.context.service.request_status(owner, repo, call.params["sha"], params, {"api": call.client_id})
    return {}


@endpoints.endpoint(
    "createComment", "POST", "/repository/<owner>/<repo>/issues/<number>/comments",
    title="Post a comment on a given GitHub Issue or Pull Request", category="Github Service",
    scopes="github:create-comment:<owner>/<repo>", input="create-comment",
    params=ISSUE,
)
def create_comment(call: Call[GithubContext]) -> dict[str, Any]:
    """Write a comment on an issue or pull request: recorded now, posted to GitHub by a consumer
    right after."""
    _installed(call, "Issue")
    owner, repo = call.params["owner"], call.params["repo"]
    number = int(call.params["number"])
    call.context.service.request_comment(owner, repo, number, call.body["body"], {"api": call.client_id})
    return {}


github.include(webhook.endpoints, endpoints, badges.endpoints, render.endpoints)
