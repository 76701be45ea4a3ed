"""Reading a webhook delivery as Taskcluster-GitHub reads it (its ``githubWebHookConsumer``).

Only what the payload carries is read: a release's sha and an issue
comment's pull request are resolved by the caller through GitHub.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from cairn.domain.github import tcyml

ZERO_SHA = "0" * 40
SKIP_CI = re.compile(r"\[(skip ci|ci skip)\]", re.IGNORECASE)
# The command is the rest of the first line that starts with `/taskcluster`.
COMMAND = re.compile(r"^\s*/taskcluster\s+(.+)$", re.MULTILINE)
COMMENT_ACTIONS = ("created", "edited")
NO_BUILD_EVENTS = {
    "ping": "a ping builds nothing",
    "installation": "an installation event builds nothing",
    "installation_repositories": "an installation event builds nothing",
    "check_suite": "check suites build nothing",
}


class _Body:
    """Required fields of a body, with the path of the missing one in the error."""

    def __init__(self, event_name: str, body: Mapping[str, Any]):
        self.event_name = event_name
        self.body = body

    def get(self, *path: str, required: bool = True) -> Any:
        value: Any = self.body
        for i, key in enumerate(path):
            if not isinstance(value, Mapping) or value.get(key) is None:
                if required:
                    raise ValueError(f"{self.event_name} delivery without {'.'.join(path[: i + 1])}")
                return None
            value = value[key]
        return value


def _owner(b: _Body) -> str:
    owner = b.get("repository", "owner")
    name = owner.get("login") or owner.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError(f"{b.event_name} delivery without repository.owner.login")
    return name


def _base(event_name: str, body: Mapping[str, Any], b: _Body, **fields: Any) -> tcyml.GithubEvent:
    installation = body.get("installation")
    repository = body.get("repository") if isinstance(body.get("repository"), Mapping) else {}
    sender = body.get("sender") if isinstance(body.get("sender"), Mapping) else {}
    values: dict[str, Any] = {
        "event_name": event_name,
        "action": body.get("action") if isinstance(body.get("action"), str) else None,
        "body": body,
        "tasks_for": None,
        "no_build_reason": None,
        "owner": "",
        "repo": repository.get("name") or "",
        "installation_id": installation.get("id") if isinstance(installation, Mapping) else None,
        "sha": None,
        "ref": None,
        "branch": None,
        "tag": None,
        "default_branch": repository.get("default_branch") or repository.get("master_branch"),
        "pull_request_number": None,
        "pull_request_title": None,
        "pull_request_url": None,
        "user": sender.get("login"),
        "user_email": None,
        "commit_messages": (),
        "pr_opener": None,
        "pr_head_owner": None,
        "pr_base_owner": None,
        "comment": None,
        "comment_id": None,
        "commenter": None,
        "rerun": False,
        "check_run_id": None,
        "check_suite_id": None,
        "check_run_name": None,
        "check_run_external_id": None,
        "sender_type": sender.get("type"),
    }
    if repository:
        values["owner"] = _owner(b)
    values.update(fields)
    return tcyml.GithubEvent(**values)


def _push(body: Mapping[str, Any], b: _Body) -> tcyml.GithubEvent:
    ref = b.get("ref")
    b.get("repository", "name")
    kind = ref.split("/")[1] if ref.count("/") >= 2 else ""
    name = "/".join(ref.split("/")[2:])
    sha = body.get("after")
    messages = [c.get("message") or "" for c in body.get("commits") or () if isinstance(c, Mapping)]
    head = body.get("head_commit")
    if isinstance(head, Mapping) and head.get("message"):
        commits = body.get("commits") or ()
        last_id = commits[-1].get("id") if commits and isinstance(commits[-1], Mapping) else None
        if last_id is None or last_id != head.get("id"):
            messages.append(head["message"])
    pusher = body.get("pusher") if isinstance(body.get("pusher"), Mapping) else {}
    deleted = bool(body.get("deleted")) or sha in (None, ZERO_SHA)
    return _base(
        "push", body, b,
        tasks_for=None if deleted else tcyml.PUSH,
        no_build_reason=f"the push deleted {ref}" if deleted else None,
        sha=None if deleted else sha,
        ref=ref,
        branch=None if kind == "tags" else name,
        tag=name if kind == "tags" else None,
        user_email=pusher.get("email") or None,
        commit_messages=tuple(messages),
    )


def _pull_request_fields(pr: Mapping[str, Any], b: _Body) -> dict[str, Any]:
    head = pr.get("head") or {}
    base = pr.get("base") or {}
    if not head.get("sha") or not head.get("ref"):
        raise ValueError(f"{b.event_name} delivery without pull_request.head.sha and .ref")
    return {
        "sha": head["sha"],
        "ref": f"refs/heads/{head['ref']}",
        "branch": head["ref"],
        "pull_request_number": pr.get("number"),
        "pull_request_title": pr.get("title"),
        "pull_request_url": pr.get("html_url"),
        "pr_opener": (pr.get("user") or {}).get("login"),
        "pr_head_owner": (head.get("user") or {}).get("login"),
        "pr_base_owner": (base.get("user") or {}).get("login"),
    }


def _pull_request(body: Mapping[str, Any], b: _Body) -> tcyml.GithubEvent:
    pr = b.get("pull_request")
    fields = _pull_request_fields(pr, b)
    if body.get("number") is not None:
        fields["pull_request_number"] = body["number"]
    return _base("pull_request", body, b, tasks_for=tcyml.PULL_REQUEST, **fields)


def _release(body: Mapping[str, Any], b: _Body) -> tcyml.GithubEvent:
    tag = b.get("release", "tag_name")
    return _base(
        "release", body, b,
        tasks_for=tcyml.RELEASE, ref=f"refs/tags/{tag}", tag=tag,
        branch=b.get("release", "target_commitish", required=False),
    )


def command(text: str | None) -> str | None:
    """The ``/taskcluster <command>`` of a comment's text, or None."""
    found = COMMAND.search(text or "")
    return found.group(1).strip() if found else None


def _issue_comment(body: Mapping[str, Any], b: _Body) -> tcyml.GithubEvent:
    issue = b.get("issue")
    comment = b.get("comment")
    cmd = command(comment.get("body"))
    reason = None
    if body.get("action") not in COMMENT_ACTIONS:
        reason = "only created and edited comments start builds"
    elif not issue.get("pull_request") or issue.get("state") != "open":
        reason = "the comment is not on an open pull request"
    elif cmd is None:
        reason = "the comment has no /taskcluster command"
    return _base(
        "issue_comment", body, b,
        tasks_for=None if reason else tcyml.ISSUE_COMMENT,
        no_build_reason=reason,
        pull_request_number=issue.get("number"),
        pull_request_title=issue.get("title"),
        pull_request_url=issue.get("html_url"),
        comment=cmd,
        comment_id=comment.get("id"),
        commenter=(comment.get("user") or {}).get("login"),
    )


def _check_run(body: Mapping[str, Any], b: _Body) -> tcyml.GithubEvent:
    run = b.get("check_run")
    suite = run.get("check_suite") or {}
    pulls = suite.get("pull_requests") or []
    rerun = body.get("action") == "rerequested" and str(
        (body.get("sender") or {}).get("type", "")).lower() != "bot"
    if body.get("action") != "rerequested":
        reason = "only rerequested check runs are acted on"
    elif not rerun:
        reason = "a rerun requested by a bot (Cairn itself) is not repeated"
    else:
        reason = "a rerequested check run reruns its task"
    return _base(
        "check_run", body, b,
        no_build_reason=reason, rerun=rerun,
        sha=run.get("head_sha"),
        check_run_id=run.get("id"),
        check_suite_id=suite.get("id"),
        check_run_name=run.get("name"),
        check_run_external_id=run.get("external_id"),
        pull_request_number=(pulls[0] or {}).get("number") if pulls else None,
    )


def _no_build(event_name: str, body: Mapping[str, Any], b: _Body) -> tcyml.GithubEvent:
    fields: dict[str, Any] = {"no_build_reason": NO_BUILD_EVENTS[event_name]}
    account = (body.get("installation") or {}).get("account") if isinstance(body.get("installation"), Mapping) else None
    if event_name.startswith("installation") and isinstance(account, Mapping) and not body.get("repository"):
        fields["owner"] = account.get("login") or ""
    if event_name == "check_suite":
        suite = b.get("check_suite")
        fields.update(sha=suite.get("head_sha"), check_suite_id=suite.get("id"))
    return _base(event_name, body, b, **fields)


def interpret(event_name: str, body: Mapping[str, Any]) -> tcyml.GithubEvent | None:
    if not isinstance(body, Mapping):
        raise ValueError("a delivery's body must be a JSON object")
    b = _Body(event_name, body)
    if event_name == "push":
        return _push(body, b)
    if event_name == "pull_request":
        return _pull_request(body, b)
    if event_name == "release":
        return _release(body, b)
    if event_name == "issue_comment":
        return _issue_comment(body, b)
    if event_name == "check_run":
        return _check_run(body, b)
    if event_name in NO_BUILD_EVENTS:
        return _no_build(event_name, body, b)
    return None


def skip_ci(event: tcyml.GithubEvent) -> bool:
    if event.event_name == "push":
        return bool(event.commit_messages) and bool(SKIP_CI.search(event.commit_messages[-1]))
    if event.event_name == "pull_request":
        return bool(SKIP_CI.search(event.pull_request_title or ""))
    return False


def role(event: tcyml.GithubEvent, untrusted: bool) -> str:
    prefix = f"repo:github.com/{event.owner}/{event.repo}:"
    if event.event_name == "push":
        return prefix + (f"tag:{event.tag}" if event.tag is not None else f"branch:{event.branch}")
    if event.event_name in ("pull_request", "issue_comment"):
        # Comments always use the trusted role: a collaborator asked for them.
        return prefix + ("pull-request-untrusted" if untrusted and event.event_name == "pull_request"
                         else "pull-request")
    if event.event_name == "release":
        return prefix + f"release:{event.action or 'published'}"
    if event.event_name == "check_run":
        return prefix + "rerun"
    raise ValueError(f"a {event.event_name} event has no role")


def noreply_email(login: str) -> str:
    return f"{login.removesuffix('[bot]')}@users.noreply.github.com"


def variables(event: tcyml.GithubEvent) -> dict[str, Any]:
    body = event.body
    repository = (body.get("repository") or {}).get("html_url")
    if event.event_name in ("pull_request", "issue_comment"):
        head_repo = ((body.get("pull_request") or {}).get("head") or {}).get("repo") or {}
        repository = head_repo.get("html_url") or repository
    found: dict[str, Any] = {"repository": repository or f"https://github.com/{event.owner}/{event.repo}"}
    if event.sha:
        found["revision"] = event.sha
    found["user"] = event.user or ""
    found["user_email"] = event.user_email or (noreply_email(event.user) if event.user else "")
    if event.event_name == "push":
        if event.tag is not None:
            found["tag"] = event.tag
        else:
            found["branch"] = event.branch
    elif event.event_name in ("pull_request", "issue_comment"):
        if event.branch is not None:
            found["branch"] = event.branch
        found["pr_title"] = event.pull_request_title or ""
        found["pr_number"] = event.pull_request_number
        found["pr_url"] = event.pull_request_url or ""
        if event.comment is not None:
            found["comment"] = event.comment
    elif event.event_name == "release":
        found["release_name"] = (body.get("release") or {}).get("name") or event.tag
        found["tag"] = event.tag
    return found


def with_sha(event: tcyml.GithubEvent, sha: str) -> tcyml.GithubEvent:
    return dataclasses.replace(event, sha=sha)


def with_pull_request(event: tcyml.GithubEvent, pull_request: Mapping[str, Any]) -> tcyml.GithubEvent:
    if event.event_name != "issue_comment":
        raise ValueError("only an issue comment is completed with its pull request")
    body = dict(event.body)
    body["pull_request"] = dict(pull_request)
    if event.comment is not None:
        body["taskcluster_comment"] = event.comment
    fields = _pull_request_fields(pull_request, _Body("pull request", pull_request))
    return dataclasses.replace(event, body=body, **fields)
