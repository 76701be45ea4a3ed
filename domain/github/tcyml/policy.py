"""Who may start builds: the policies of the default branch's ``.taskcluster.yml``, as Taskcluster applies them."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from cairn.domain.github import tcyml
from cairn.domain.github.tcyml import config as files

PR_POLICIES = (tcyml.PUBLIC, tcyml.PUBLIC_RESTRICTED, tcyml.COLLABORATORS, tcyml.COLLABORATORS_QUIET)
COMMENT_POLICIES = (tcyml.COLLABORATORS,)


def policy_of(config: Mapping[str, Any]) -> dict[str, Any] | None:
    found = config.get("policy")
    return found if isinstance(found, Mapping) else None


def read_policy(text: str | None, fetch_file: tcyml.FetchFile | None = None) -> tcyml.Policy:
    if text is None:
        # No file on the default branch: collaborators may try the file out in a pull request.
        return tcyml.Policy(tcyml.COLLABORATORS_QUIET, None, found=False)
    try:
        config = files.parse_yaml(text, ".taskcluster.yml")
    except tcyml.ConfigError:
        return tcyml.Policy()
    if not isinstance(config, Mapping) or config.get("version") not in (1, 2):
        return tcyml.Policy()
    policy = policy_of(config)
    if policy is None and isinstance(config.get("config-from"), str) and fetch_file is not None:
        try:
            reference = files.parse_reference(config["config-from"])
            fetched = fetch_file(reference.owner, reference.repo, reference.path, reference.ref)
            referenced = files.parse_yaml(fetched.text, str(reference))
        except Exception:  # noqa: BLE001 - an unreadable reference leaves the default policy
            referenced = None
        if isinstance(referenced, Mapping) and referenced.get("version") in (1, 2):
            policy = policy_of(referenced)
    return policy_from(policy)


def policy_from(policy: Mapping[str, Any] | None) -> tcyml.Policy:
    policy = policy or {}
    pull_requests = policy.get("pullRequests")
    allow_comments = policy.get("allowComments")
    return tcyml.Policy(
        pull_requests if pull_requests in PR_POLICIES else tcyml.COLLABORATORS,
        allow_comments if allow_comments in COMMENT_POLICIES else None,
    )


def pull_request_trusted(event: tcyml.GithubEvent, is_collaborator: Callable[[str], bool]) -> bool:
    opener = event.pr_opener
    if not opener or not is_collaborator(opener):
        return False
    head = event.pr_head_owner
    if head == opener:
        return True
    return head is not None and (head == event.pr_base_owner or is_collaborator(head))


def comment_body(summary: str, details: str) -> str:
    return "\n".join(["<details>\n", f"<summary>{summary}</summary>", "", details, "", "</details>"])


def error_comment(error: BaseException | str) -> str:
    details = error if isinstance(error, str) else str(error)
    if not isinstance(details, str):
        details = json.dumps(details, indent=4, sort_keys=True)
    return comment_body("Uh oh! Looks like an error!", details)


REFUSED_PR = comment_body(
    "No Taskcluster jobs started for this pull request",
    "The `allowPullRequests` configuration for this repository (in `.taskcluster.yml` on the default "
    "branch) does not allow starting tasks for this pull request.",
)
REFUSED_COMMENTS = comment_body(
    "No Taskcluster jobs started for comment",
    "The `policy.allowComments` configuration for this repository (in `.taskcluster.yml` on the default "
    "branch) does not allow starting tasks from comments.",
)
EMPTY_FOR_COMMENT = comment_body(
    "No Taskcluster jobs started for this command", "Task graph produced empty list of tasks and hooks"
)


def pull_request_decision(policy: tcyml.Policy, event: tcyml.GithubEvent, trusted: bool) -> tcyml.Decision:
    if trusted or policy.pull_requests == tcyml.PUBLIC:
        return tcyml.Decision(build=True)
    if policy.pull_requests == tcyml.PUBLIC_RESTRICTED:
        return tcyml.Decision(build=True, untrusted=True)
    comment = None
    if policy.pull_requests == tcyml.COLLABORATORS and event.action == "opened":
        comment = REFUSED_PR
    return tcyml.Decision(build=False, comment=comment)


def comment_decision(policy: tcyml.Policy, commenter_is_collaborator: bool,
                     commenter: str | None = None) -> tcyml.Decision:
    if not policy.found:
        return tcyml.Decision(build=False)  # no file on the default branch: quietly nothing
    if policy.allow_comments not in COMMENT_POLICIES:
        return tcyml.Decision(build=False, comment=REFUSED_COMMENTS, reaction="confused")
    if not commenter_is_collaborator:
        details = f'Cannot create tasks from comments. User "{commenter or "unknown"}" is not a collaborator.'
        return tcyml.Decision(
            build=False,
            comment=comment_body("No Taskcluster jobs started for this pull request", details),
            reaction="eyes",
        )
    return tcyml.Decision(build=True, reaction="+1")
