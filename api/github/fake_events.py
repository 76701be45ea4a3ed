"""Made-up webhook payloads for renderTaskclusterYml: an event of each kind a
``.taskcluster.yml`` can be rendered for, on a given repository and branch.

Like Taskcluster's, the payload has the fields GitHub sends that templates
use (refs, shas, the repository, the sender, the pull request or release),
with fixed example values; the request's ``overrides`` are merged over its
top level, so ``{"ref": "refs/tags/v1.0"}`` makes a push a tag push.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

BEFORE_SHA = "7a257a6d139708a3188bf2e0cd1f15e466a88d0e"
HEAD_SHA = "b79ce60be819cdc482c9c6a84dc3c457959aa66f"
BASE_SHA = "42eb5b5ff7c5a7c0b0d4d1e0b0a5e2c0d5b1e3f4"
SENDER = "octo-dev"


def _user(login: str, user_id: int = 18102552) -> dict[str, Any]:
    return {"login": login, "id": user_id, "type": "User", "html_url": f"https://github.com/{login}"}


def _repository(organization: str, repository: str) -> dict[str, Any]:
    return {
        "id": 68761376,
        "name": repository,
        "full_name": f"{organization}/{repository}",
        "owner": {**_user(organization, 1), "name": organization, "type": "Organization"},
        "private": False,
        "html_url": f"https://github.com/{organization}/{repository}",
        "url": f"https://api.github.com/repos/{organization}/{repository}",
        "clone_url": f"https://github.com/{organization}/{repository}.git",
        "ssh_url": f"git@github.com:{organization}/{repository}.git",
        "default_branch": "main",
    }


def _push(organization: str, repository: str, branch: str) -> dict[str, Any]:
    repo = _repository(organization, repository)
    commit = {
        "id": HEAD_SHA,
        "message": "Update README.md",
        "timestamp": "2024-01-12T11:16:14-08:00",
        "url": f"{repo['html_url']}/commit/{HEAD_SHA}",
        "author": {"name": "Octo Dev", "email": f"{SENDER}@users.noreply.github.com", "username": SENDER},
        "committer": {"name": "GitHub", "email": "noreply@github.com", "username": "web-flow"},
        "added": [], "removed": [], "modified": ["README.md"],
    }
    return {
        "ref": f"refs/heads/{quote(branch, safe='/')}",
        "before": BEFORE_SHA,
        "after": HEAD_SHA,
        "created": False,
        "deleted": False,
        "forced": False,
        "base_ref": None,
        "compare": f"{repo['html_url']}/compare/{BEFORE_SHA[:12]}...{HEAD_SHA[:12]}",
        "commits": [commit],
        "head_commit": commit,
        "repository": repo,
        "pusher": {"name": SENDER, "email": None},
        "sender": _user(SENDER),
    }


def fake_pull_request(organization: str, repository: str, branch: str, number: int = 1) -> dict[str, Any]:
    """A pull request as GitHub's ``GET /repos/{owner}/{repo}/pulls/{number}`` gives it."""
    repo = _repository(organization, repository)
    return {
        "number": number,
        "state": "open",
        "title": "Update the README",
        "html_url": f"{repo['html_url']}/pull/{number}",
        "url": f"{repo['url']}/pulls/{number}",
        "user": _user(SENDER),
        "head": {"label": f"{organization}:{branch}", "ref": branch, "sha": HEAD_SHA, "user": _user(organization, 1),
                 "repo": repo},
        "base": {"label": f"{organization}:main", "ref": "main", "sha": BASE_SHA, "user": _user(organization, 1),
                 "repo": repo},
        "merged": False,
    }


def _pull_request(organization: str, repository: str, branch: str) -> dict[str, Any]:
    pull_request = fake_pull_request(organization, repository, branch)
    return {
        "number": pull_request["number"],
        "pull_request": pull_request,
        "repository": pull_request["base"]["repo"],
        "sender": _user(SENDER),
    }


def _release(organization: str, repository: str, branch: str) -> dict[str, Any]:
    repo = _repository(organization, repository)
    return {
        "release": {
            "id": 11248810,
            "tag_name": "v1.0.0",
            "target_commitish": branch,
            "name": "v1.0.0",
            "draft": False,
            "prerelease": False,
            "url": f"{repo['url']}/releases/11248810",
            "html_url": f"{repo['html_url']}/releases/tag/v1.0.0",
            "tarball_url": f"{repo['url']}/tarball/v1.0.0",
            "zipball_url": f"{repo['url']}/zipball/v1.0.0",
            "author": _user(SENDER),
        },
        "repository": repo,
        "sender": _user(SENDER),
    }


def _issue_comment(organization: str, repository: str, branch: str) -> dict[str, Any]:
    pull_request = fake_pull_request(organization, repository, branch)
    return {
        "issue": {
            "number": pull_request["number"],
            "title": pull_request["title"],
            "state": "open",
            "html_url": pull_request["html_url"],
            "user": _user(SENDER),
            "pull_request": {"url": pull_request["url"], "html_url": pull_request["html_url"]},
        },
        "comment": {"id": 5215421, "body": "/taskcluster run", "user": _user(SENDER)},
        "repository": pull_request["base"]["repo"],
        "sender": _user(SENDER),
    }


_EVENTS = {
    "github-push": ("push", _push),
    "github-pull-request": ("pull_request", _pull_request),
    "github-pull-request-untrusted": ("pull_request", _pull_request),
    "github-release": ("release", _release),
    "github-issue-comment": ("issue_comment", _issue_comment),
}


def fake_event(
    tasks_for: str, action: str | None, organization: str, repository: str, branch: str,
    overrides: dict[str, Any] | None = None,
) -> tuple[str, dict[str, Any]]:
    """(``X-GitHub-Event``, payload) of a made-up delivery for ``tasks_for``."""
    event_name, make = _EVENTS[tasks_for]
    body = make(organization, repository, branch)
    if action is not None:
        body["action"] = action
    body.update(overrides or {})
    return event_name, body
