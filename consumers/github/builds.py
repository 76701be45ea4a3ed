"""Recorded GitHub deliveries become task groups: a consumer of the log, as Taskcluster-GitHub's job handler.

For each ``GithubDelivery.Received`` it reads the delivery (``tcyml.interpret``),
drops ``[skip ci]``, resolves what the payload lacks (a release's sha, a
comment's pull request), reads ``.taskcluster.yml`` at the head sha, applies
the pull-request or comment policy of the DEFAULT branch's file (asking
GitHub whether people are collaborators), renders the file and creates its
tasks with ``schedulerId: taskcluster-github`` and only the scopes the
rendering names (``assume:repo:github.com/<owner>/<repo>:...``), checked as
the queue's createTask would (``cairn/scoped_queue.py``). A check run
rerequested on GitHub reruns its task; a check suite rerequested reruns
the resolved tasks of the builds of its commit. What was done is recorded
on the delivery (``GithubDelivery.Handled``): a delivery handled already is
passed over.

Exactly once where it matters: every id the rendering makes (task ids, the
task group id) derives from the delivery id, and the rendering's ``now`` is
the time the delivery was received, so a consumer killed mid-build renders
the very same tasks again; createTask is idempotent for the same definition,
and the build is recorded before its tasks. Its guarantee is at least once:
GitHub being unavailable (``GithubUnavailable``) makes the follower retry
the delivery later, from the start; a comment posted just before a crash may
be posted again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from cairn.consumers.github.client import GithubError, GithubUnavailable, Installation
from cairn.consumers.log_follower import Guarantee, LoggedEvent, Unavailable
from cairn.domain.aggregate import acting_as
from cairn.domain.errors import Conflict, DomainError, NotFound
from cairn.domain.github import tcyml
from cairn.domain.github.model import GithubDelivery
from cairn.domain.github.service import GithubService
from cairn.domain.timestamps import parse_time, utcnow
from cairn.projections.store.moved_topics import topics_of

log = logging.getLogger("cairn.github")

NAME = "github-builds"
ACTOR = "cairn/github"
TASKCLUSTER_YML = ".taskcluster.yml"


def event_type(event: tcyml.GithubEvent) -> str:
    """Taskcluster's ``event.type``: push, tag, pull_request.<action>, release, issue_comment.<action>."""
    if event.event_name == "push":
        return "tag" if event.tag else "push"
    if event.event_name in ("pull_request", "issue_comment"):
        return f"{event.event_name}.{event.action}"
    return event.event_name


def scopes_refusal(scopes: list[str], message: str) -> str:
    """Taskcluster's explanation of an InsufficientScopes refusal, for the comment."""
    return "\n".join([
        "Taskcluster-GitHub attempted to create a task for this event with the following scopes:", "",
        "```", json.dumps(scopes, indent=2), "```", "",
        "The expansion of these scopes is not sufficient to create the task, leading to the following:", "",
        message,
    ])


class Outcome(Exception):
    """The delivery is done with: ``outcome`` and ``detail`` are recorded on it."""

    def __init__(self, outcome: str, **detail: Any):
        super().__init__(outcome)
        self.outcome = outcome
        self.detail = detail


class DeliveryBuilder:
    name = NAME
    guarantee: Guarantee = "at-least-once"
    topics: tuple[str, ...] = topics_of([GithubDelivery.Received])

    def __init__(self, service: GithubService, installation: Callable[[int], Installation], scoped_queue: Any,
                 reads: Any, root_url: str, checks: Any):
        self.service = service
        self.installation = installation
        self.scoped = scoped_queue
        self.reads = reads
        self.root_url = root_url
        self.checks = checks

    def handle(self, session: Any, batch: list[LoggedEvent]) -> None:
        for logged in batch:
            self.handle_delivery(logged.event.originator_id.split("/", 1)[1])

    def handle_delivery(self, delivery_id: str) -> str | None:
        """Act on one delivery unless it was handled; returns the outcome recorded."""
        delivery = self.service.delivery(delivery_id)
        if delivery is None or delivery.handled:
            return None
        with acting_as(ACTOR):
            try:
                self._build(delivery)
            except Outcome as done:
                outcome, detail = done.outcome, done.detail
            except GithubUnavailable as e:
                raise Unavailable(str(e)) from e
            except GithubError as e:
                log.warning("GitHub refused a call for delivery %s: %s", delivery_id, e)
                outcome, detail = "failed", {"error": str(e)}
            else:  # pragma: no cover - _build always ends with an Outcome
                outcome, detail = "ignored", {}
            self.service.record_delivery_handled(delivery_id, outcome, detail)
            return outcome

    # the job handler

    def _build(self, delivery: GithubDelivery) -> None:
        try:
            event = tcyml.interpret(delivery.event_name, delivery.body)
        except ValueError as e:
            raise Outcome("ignored", reason=f"malformed delivery: {e}") from None
        if event is None:
            raise Outcome("ignored", reason=f"no handler for {delivery.event_name}")
        if event.installation_id is None:
            raise Outcome("ignored", reason="the delivery came through no installation")
        gh = self.installation(event.installation_id)
        if event.rerun:
            self._rerun_check_run(event, gh)
        if event.event_name == "check_suite" and event.action == "rerequested":
            self._rerun_check_suite(event, gh)
        if event.tasks_for is None:
            raise Outcome("ignored", reason=event.no_build_reason or "nothing to build")
        if tcyml.skip_ci(event):
            raise Outcome("skipped", reason="[skip ci]")
        event = self._complete(event, gh)
        text = gh.file(event.owner, event.repo, TASKCLUSTER_YML, event.sha)
        if text is None:
            raise Outcome("skipped", reason=f"no {TASKCLUSTER_YML} at {event.sha}")
        decision = self._decide(event, gh)
        now = parse_time(delivery.received)
        try:
            rendered = tcyml.render(
                text, event, root_url=self.root_url, now=now, fetch_file=self.fetcher(gh),
                untrusted=decision.untrusted, id_seed=delivery.delivery_id,
            )
        except tcyml.ConfigError as e:
            self._comment(gh, event, tcyml.error_comment(e))
            raise Outcome("failed", error=str(e), kind=e.kind) from None
        if not rendered.tasks:
            if event.event_name == "issue_comment":
                self._comment(gh, event, tcyml.comment_body(
                    "No Taskcluster jobs started for this command", "Task graph produced empty list of tasks and hooks"
                ))
            raise Outcome("skipped", reason="the file renders no tasks")
        self._create(delivery, event, rendered, now, gh)

    def _complete(self, event: tcyml.GithubEvent, gh: Installation) -> tcyml.GithubEvent:
        """What the payload lacks: a release's sha, an issue comment's pull request."""
        if event.event_name == "issue_comment" and event.pull_request_number is not None and event.sha is None:
            event = event.with_pull_request(gh.pull_request(event.owner, event.repo, event.pull_request_number))
        if event.sha is None and event.event_name == "release":
            target = event.body.get("release", {}).get("target_commitish") or event.tag
            sha = gh.commit_sha(event.owner, event.repo, target)
            if sha is None:
                raise Outcome("skipped", reason=f"the release's target {target} names no commit")
            event = event.with_sha(sha)
        if event.sha is None:
            raise Outcome("ignored", reason="no commit to build")
        return event

    def _decide(self, event: tcyml.GithubEvent, gh: Installation) -> tcyml.Decision:
        """The policy of the default branch's file: who may build a pull request, or from a comment."""
        if event.event_name not in ("pull_request", "issue_comment"):
            return tcyml.Decision(build=True)
        branch = event.default_branch or gh.default_branch(event.owner, event.repo)
        policy = tcyml.read_policy(gh.file(event.owner, event.repo, TASKCLUSTER_YML, branch), self.fetcher(gh))

        def collaborator(login: str) -> bool:
            return gh.is_collaborator(event.owner, event.repo, login)

        if event.event_name == "pull_request":
            decision = tcyml.pull_request_decision(policy, event, tcyml.pull_request_trusted(event, collaborator))
        else:
            commenter_ok = bool(event.commenter) and collaborator(event.commenter or "")
            decision = tcyml.comment_decision(policy, commenter_ok, event.commenter)
        if decision.comment:
            self._comment(gh, event, decision.comment)
        if decision.reaction and not decision.build:
            self._react(gh, event, decision.reaction)
        if not decision.build:
            raise Outcome("refused", policy=policy.pull_requests, allow_comments=policy.allow_comments)
        return decision

    def fetcher(self, gh: Installation) -> tcyml.FetchFile:
        def fetch(owner: str, repo: str, path: str, ref: str) -> tcyml.FetchedFile:
            installation_id = self.service.installation_id(owner)
            reader = self.installation(installation_id) if installation_id is not None else gh
            revision = reader.commit_sha(owner, repo, ref)
            if revision is None:
                raise LookupError(f"github.com/{owner}/{repo} has no revision {ref}")
            text = reader.file(owner, repo, path, revision)
            if text is None:
                raise LookupError(f"github.com/{owner}/{repo} has no file {path} at {ref}")
            return tcyml.FetchedFile(text, revision)

        return fetch

    def _comment(self, gh: Installation, event: tcyml.GithubEvent, body: str) -> None:
        """A pull request's comment when there is a pull request, else a commit comment.

        GitHub refusing it (the App may lack the permission) leaves what is recorded as it is."""
        try:
            if event.pull_request_number is not None:
                gh.create_issue_comment(event.owner, event.repo, event.pull_request_number, body)
            elif event.sha:
                gh.create_commit_comment(event.owner, event.repo, event.sha, body)
        except GithubError as e:
            log.warning("GitHub refused a comment on %s/%s: %s", event.owner, event.repo, e)

    def _react(self, gh: Installation, event: tcyml.GithubEvent, reaction: str) -> None:
        if event.comment_id is None:
            return
        try:
            gh.add_comment_reaction(event.owner, event.repo, event.comment_id, reaction)
        except GithubError as e:
            log.warning("GitHub refused a reaction on %s/%s: %s", event.owner, event.repo, e)

    def _create(self, delivery: GithubDelivery, event: tcyml.GithubEvent, rendered: tcyml.Rendered,
                now: datetime, gh: Installation) -> None:
        group = rendered.task_group_id
        assert group is not None
        try:
            self.service.record_build(
                group, event.owner, event.repo, event.sha or "", event_type(event), delivery.delivery_id,
                event.installation_id, now, pull_request_number=event.pull_request_number, branch=event.branch,
                tasks_for=rendered.tasks_for, reporting=rendered.reporting,
            )
        except Conflict as e:  # a task group id fixed in the file, already used by another build
            self._comment(gh, event, tcyml.error_comment(e.message))
            raise Outcome("failed", error=e.message, taskGroupId=group) from None
        created = []
        for task_id, definition in rendered.tasks:
            # Rendered again after a crash, a task is the same (its ids derive from the delivery, `now` is
            # when it was received), and createTask takes it again; a Conflict is a real clash.
            try:
                self.scoped.create_task(rendered.scopes, task_id, definition, now, ACTOR, who="The scopes")
            except DomainError as e:
                code = getattr(e, "code", "")
                error = scopes_refusal(rendered.scopes, e.message) if code == "InsufficientScopes" else e.message
                self._comment(gh, event, tcyml.error_comment(error))
                self.service.set_build_state(group, "error", utcnow())
                raise Outcome("failed", error=error, taskGroupId=group, created=created) from None
            created.append(task_id)
        routes = list(rendered.tasks[0][1].get("routes", []))
        self.service.record_build_tasks_created(group, created, routes)
        if rendered.auto_cancel_previous_checks and event.pull_request_number is not None:
            self._cancel_previous(event, group, delivery.delivery_id, gh)
        if event.event_name == "issue_comment":
            self._react(gh, event, "+1")
        raise Outcome("created", taskGroupId=group, taskIds=created)

    def _cancel_previous(self, event: tcyml.GithubEvent, group: str, delivery_id: str, gh: Installation) -> None:
        """autoCancelPreviousChecks: seal and cancel the unfinished groups of earlier builds of the pull request."""
        kinds = {event_type(event)}
        if kinds & {"pull_request.opened", "pull_request.synchronize"}:
            kinds = {"pull_request.opened", "pull_request.synchronize"}
        scopes = [
            f"assume:repo:github.com/{event.owner}/{event.repo}:*",
            "queue:seal-task-group:taskcluster-github/*",
            "queue:cancel-task-group:taskcluster-github/*",
        ]
        for build in self.reads.pending_builds_of_pull_request(event.owner, event.repo, event.pull_request_number):
            if build["task_group_id"] == group or build["event_id"] == delivery_id or build["event_type"] not in kinds:
                continue
            # Cancelled first, so that the reporter takes the tasks' cancellation for what it is.
            self.service.cancel_build(build["task_group_id"], utcnow())
            try:
                self.scoped.cancel_task_group(scopes, build["task_group_id"], utcnow(), ACTOR, who="The scopes")
            except NotFound:
                pass  # a group never created: nothing runs
            except DomainError as e:
                self.service.set_build_state(build["task_group_id"], "pending", utcnow())
                self._comment(gh, event, tcyml.error_comment(
                    "Taskcluster-GitHub attempted to cancel previously created task groups with following "
                    f"scopes:\n\n```\n{', '.join(scopes)}\n```\n\n{e.message}"
                ))

    # reruns

    def _rerun_check_run(self, event: tcyml.GithubEvent, gh: Installation) -> None:
        """A check run rerequested on GitHub: rerun its task (queue rerunTask, role ``...:rerun``)."""
        task_id = event.check_run_external_id
        checks = self.checks.of(task_id) if task_id else None
        build = self.service.build(checks.task_group_id) if checks is not None else None
        if build is None or (build.organization, build.repository) != (event.owner, event.repo):
            raise Outcome("ignored", reason=f"check run {event.check_run_id} is not one of Cairn's")
        self._rerun(event, gh, build.task_group_id, [task_id or ""])

    def _rerun_check_suite(self, event: tcyml.GithubEvent, gh: Installation) -> None:
        """A check suite rerequested: rerun the resolved tasks of the builds of its commit."""
        sha = event.body.get("check_suite", {}).get("head_sha")
        groups = self.reads.build_groups_of_sha(event.owner, event.repo, sha) if sha else []
        if not groups:
            raise Outcome("ignored", reason=f"no build of {sha} to rerun")
        for group in groups:
            self._rerun(event, gh, group, self.reads.resolved_tasks(group), final=False)
        raise Outcome("rerun", taskGroupIds=groups)

    def _rerun(self, event: tcyml.GithubEvent, gh: Installation, group: str, task_ids: list[str],
               final: bool = True) -> None:
        role = f"repo:github.com/{event.owner}/{event.repo}:rerun"
        for task_id in task_ids:
            try:
                self.scoped.rerun_task([f"assume:{role}"], task_id, utcnow(), ACTOR, who=f"The role `{role}`")
            except DomainError as e:
                self._comment(gh, event, tcyml.error_comment(e.message))
                raise Outcome("failed", error=e.message, taskGroupId=group) from None
        # The reporter moves the build back to pending as the new runs appear.
        if final:
            raise Outcome("rerun", taskGroupId=group, taskIds=task_ids)
