"""What Taskcluster makes of a webhook delivery: which exchange announces it, and with what.

Taskcluster-GitHub turns each delivery it acts on into a Pulse message
(push, pull-request, release, rerun) that its own handlers then consume.
Cairn records the delivery instead and derives the same message from the
recorded event; :func:`classify` is that derivation's first half, shared by
the message builder and by the consumer that creates task groups:

- ``push``: skipped when the head commit's message says ``[skip ci]`` or
  ``[ci skip]``; ``event.type`` is ``tag`` for ``refs/tags/...``;
- ``pull_request``: skipped when the title says ``[skip ci]`` / ``[ci skip]``;
- ``issue_comment``: only ``created`` / ``edited`` comments on an open pull
  request holding ``/taskcluster <command>``, announced on pull-request;
- ``release``; ``check_run`` ``rerequested`` by someone other than a bot;
- anything else (``ping``, ``installation``, ``check_suite``, ...) is
  announced on no exchange.

Where Taskcluster looks up the sender's public e-mail on GitHub for
``event.head.user.email``, the derivation cannot ask GitHub anything: it
gives the address Taskcluster falls back to, ``<login>@users.noreply.github.com``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

CI_SKIP = re.compile(r"\[(skip ci|ci skip)\]", re.IGNORECASE)
TASKCLUSTER_COMMAND = re.compile(r"^\s*/taskcluster\s+(.+)$", re.MULTILINE)

PUSH, PULL_REQUEST, RELEASE, RERUN = "push", "pull-request", "release", "rerun"


def sanitize_github_field(field_value: str) -> str:
    """An owner or repository name as Taskcluster puts it in routing keys and builds:
    characters other than letters, digits, ``-``, ``_`` and ``.`` dropped, ``.`` as ``%``.

    ``%`` is kept (GitHub allows it in no name), so that a name written so is
    written the same again."""
    return re.sub(r"[^a-zA-Z0-9\-_.%]", "", field_value).replace(".", "%")


@dataclass(frozen=True)
class WebhookEvent:
    """A delivery as Taskcluster announces it; ``exchange`` is None when it announces
    nothing, with ``skip_reason`` saying why."""

    exchange: str | None
    skip_reason: str = ""
    organization: str = ""
    repository: str = ""
    tasks_for: str = ""
    branch: str | None = None
    action: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    check_run_id: int | None = None
    check_suite_id: int | None = None


def _get(body: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(body, dict):
            return None
        body = body.get(key)
    return body


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def taskcluster_command(comment_body: str) -> str | None:
    found = TASKCLUSTER_COMMAND.search(comment_body)
    return found[1].strip() if found else None


def skip_push(body: dict[str, Any]) -> bool:
    head = body.get("head_commit")
    message = _get(head, "message")
    if not message:
        commits = body.get("commits")
        message = _get(commits[-1], "message") if isinstance(commits, list) and commits else None
    return bool(message) and bool(CI_SKIP.search(_text(message)))


def skip_pull_request(body: dict[str, Any]) -> bool:
    return bool(CI_SKIP.search(_text(_get(body, "pull_request", "title"))))


def skip_comment(body: dict[str, Any]) -> bool:
    if body.get("action") not in ("created", "edited"):
        return True
    issue = body.get("issue")
    if not _get(issue, "pull_request") or _get(issue, "state") != "open":
        return True
    return taskcluster_command(_text(_get(body, "comment", "body"))) is None


def pull_request_details(body: dict[str, Any]) -> dict[str, Any]:
    pr = body.get("pull_request") or {}
    base, head = pr.get("base") or {}, pr.get("head") or {}
    return {
        "event.base.ref": f"refs/heads/{_get(base, 'ref')}",
        "event.base.repo.branch": _get(base, "ref"),
        "event.base.repo.name": _get(base, "repo", "name"),
        "event.base.repo.url": _get(base, "repo", "clone_url"),
        "event.base.sha": _get(base, "sha"),
        "event.base.user.login": _get(base, "user", "login"),
        "event.head.ref": f"refs/heads/{_get(head, 'ref')}",
        "event.head.repo.branch": _get(head, "ref"),
        "event.head.repo.name": _get(head, "repo", "name"),
        "event.head.repo.url": _get(head, "repo", "clone_url"),
        "event.head.sha": _get(head, "sha"),
        "event.head.user.login": _get(body, "sender", "login"),
        "event.head.user.id": _get(body, "sender", "id"),
        "event.pullNumber": body.get("number"),
        "event.title": pr.get("title"),
        "event.type": f"pull_request.{body.get('action')}",
    }


def push_details(body: dict[str, Any]) -> dict[str, Any]:
    ref = _text(body.get("ref"))
    parts = ref.split("/")
    name = "/".join(parts[2:])
    is_tag = len(parts) > 1 and parts[1] == "tags"
    details = {
        "event.base.ref": ref,
        "event.base.repo.name": _get(body, "repository", "name"),
        "event.base.repo.url": _get(body, "repository", "clone_url"),
        "event.base.sha": body.get("before"),
        "event.base.user.login": _get(body, "sender", "login"),
        "event.head.ref": ref,
        "event.head.repo.name": _get(body, "repository", "name"),
        "event.head.repo.url": _get(body, "repository", "clone_url"),
        "event.head.sha": body.get("after"),
        "event.head.user.login": _get(body, "sender", "login"),
        "event.head.user.id": _get(body, "sender", "id"),
        "event.type": "tag" if is_tag else "push",
    }
    if is_tag:
        details["event.head.tag"] = name
    else:
        details["event.base.repo.branch"] = name
        details["event.head.repo.branch"] = name
    return details


def release_details(body: dict[str, Any]) -> dict[str, Any]:
    release = body.get("release") or {}
    return {
        "event.type": "release",
        "event.base.repo.branch": release.get("target_commitish"),
        "event.head.user.login": _get(body, "sender", "login"),
        "event.head.user.id": _get(body, "sender", "id"),
        "event.version": release.get("tag_name"),
        "event.name": release.get("name"),
        "event.head.repo.name": _get(body, "repository", "name"),
        "event.head.repo.url": _get(body, "repository", "clone_url"),
        "event.release.url": release.get("url"),
        "event.prerelease": release.get("prerelease"),
        "event.draft": release.get("draft"),
        "event.tar": release.get("tarball_url"),
        "event.zip": release.get("zipball_url"),
    }


def issue_comment_details(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "event.type": f"issue_comment.{body.get('action')}",
        "event.head.user.login": _get(body, "sender", "login"),
        "taskcluster_comment": taskcluster_command(_text(_get(body, "comment", "body"))),
    }


def _with_email(details: dict[str, Any]) -> dict[str, Any]:
    login = details.get("event.head.user.login")
    if isinstance(login, str) and login:
        details["event.head.user.email"] = f"{login.removesuffix('[bot]')}@users.noreply.github.com"
    return details


def classify(event_name: str, body: dict[str, Any]) -> WebhookEvent:
    """The exchange and message fields Taskcluster derives from one delivery."""
    owner = _get(body, "repository", "owner") or {}
    repository = sanitize_github_field(_text(_get(body, "repository", "name")))
    login = sanitize_github_field(_text(_get(owner, "login")))
    action = body.get("action") if isinstance(body.get("action"), str) else None
    if event_name == "push":
        if skip_push(body):
            return WebhookEvent(None, "the head commit's message asks to skip CI")
        ref = _text(body.get("ref"))
        return WebhookEvent(
            PUSH, organization=sanitize_github_field(_text(_get(owner, "name")) or _text(_get(owner, "login"))),
            repository=repository, tasks_for="github-push", branch="/".join(ref.split("/")[2:]),
            details=_with_email(push_details(body)),
        )
    if event_name == "pull_request":
        if skip_pull_request(body):
            return WebhookEvent(None, "the pull request's title asks to skip CI")
        return WebhookEvent(
            PULL_REQUEST, organization=login, repository=repository, tasks_for="github-pull-request",
            branch=_get(body, "pull_request", "head", "ref"), action=action,
            details=_with_email(pull_request_details(body)),
        )
    if event_name == "issue_comment":
        if skip_comment(body):
            return WebhookEvent(None, "not a /taskcluster command on an open pull request")
        return WebhookEvent(
            PULL_REQUEST, organization=login, repository=repository, tasks_for="github-issue-comment",
            branch="unknown", action=action, details=_with_email(issue_comment_details(body)),
        )
    if event_name == "release":
        return WebhookEvent(
            RELEASE, organization=login, repository=repository, tasks_for="github-release",
            branch=_get(body, "release", "target_commitish"), action=action,
            details=_with_email(release_details(body)),
        )
    if event_name == "check_run":
        if action != "rerequested":
            return WebhookEvent(None, "only a rerequested check run is acted on")
        if _text(_get(body, "sender", "type")).lower() == "bot":
            return WebhookEvent(None, "a rerun requested by a bot")
        details = {
            "event.head.user.login": _get(body, "sender", "login"),
            "event.head.repo.name": _get(body, "repository", "name"),
        }
        return WebhookEvent(
            RERUN, organization=login, repository=repository, tasks_for="github-push", action=action,
            details=_with_email(details), check_run_id=_get(body, "check_run", "id"),
            check_suite_id=_get(body, "check_run", "check_suite", "id"),
        )
    return WebhookEvent(None, f"no exchange announces {event_name} events")
