"""The github service's commands: record deliveries, builds, installations and requests to GitHub.

Who calls what:

- the webhook receiver (``api/github``) calls :meth:`GithubService.record_delivery`
  once a delivery's signature is verified; nothing else happens in the request;
- the consumer that turns deliveries into task groups (``consumers/github``)
  reads :meth:`delivery`, calls :meth:`record_build` for each task group it
  is about to create, :meth:`record_build_tasks_created` once its tasks are,
  and :meth:`record_delivery_handled` once it is done with a
  delivery (so a restart does nothing twice);
- the reporter (``consumers/github``) calls :meth:`set_build_state` as the
  task group resolves, and :meth:`request_status` / :meth:`request_comment`
  (or the outcome methods below) for what it tells GitHub;
- the API's cancelBuilds calls :meth:`cancel_build` for each task group it
  cancelled; createStatus and createComment call :meth:`request_status` and
  :meth:`request_comment`; repository asks :meth:`repository_installed`;
- the consumer that makes requests to GitHub reads :meth:`request` and records
  :meth:`record_request_posted`, :meth:`record_request_attempt_failed` or
  :meth:`record_request_failed`.

Every command is idempotent: a delivery recorded again, a build created again
with the same fields, a state it is already in, an outcome for a request
that has already ended: each changes nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import slugid

from cairn.domain.errors import Conflict, InvalidInput, NotFound
from cairn.domain.event_log import EventLog
from cairn.domain.github.installations import installation_change
from cairn.domain.github.model import (
    BUILD_STATES,
    GithubBuild,
    GithubDelivery,
    GithubInstallation,
    GithubRequest,
    build_key,
    delivery_key,
    installation_key,
    request_key,
)
from cairn.domain.timestamps import iso


class GithubService:
    def __init__(self, log: EventLog):
        self.log = log

    # deliveries

    def delivery(self, delivery_id: str) -> GithubDelivery | None:
        return self.log.get(delivery_key(delivery_id))

    def record_delivery(
        self, delivery_id: str, event_name: str, body: dict[str, Any], received: datetime
    ) -> tuple[GithubDelivery, bool]:
        """Record a verified webhook delivery and what it says about the app's installations.

        Returns the delivery and whether it is new: a redelivery (the same
        ``X-GitHub-Delivery``) returns the one recorded and changes nothing.
        """
        installation = body.get("installation")
        installation_id = installation.get("id") if isinstance(installation, dict) else None
        if not isinstance(installation_id, int) or isinstance(installation_id, bool):
            installation_id = None

        def record() -> tuple[GithubDelivery, bool]:
            existing = self.delivery(delivery_id)
            if existing is not None:
                return existing, False
            delivery = GithubDelivery(
                delivery_id=delivery_id, event_name=event_name, installation_id=installation_id,
                body=body, received=iso(received),
            )
            change = installation_change(event_name, body)
            installation = None if change is None else self._installation_changed(change)
            self.log.save(delivery, *([installation] if installation is not None else []))
            return delivery, True

        return self.log.command(record)

    def record_delivery_handled(self, delivery_id: str, outcome: str, detail: dict[str, Any] | None = None) -> bool:
        """Record what was done with a delivery (``created``, ``skipped``, ``failed``, ...);
        False if it had been handled already (the first outcome stands)."""

        def record() -> bool:
            delivery = self.delivery(delivery_id)
            if delivery is None:
                raise NotFound(f"no GitHub delivery {delivery_id}")
            if not delivery.handle(outcome, detail or {}):
                return False
            self.log.save(delivery)
            return True

        return self.log.command(record)

    # installations

    def installation(self, owner: str) -> GithubInstallation | None:
        """The owner's live installation, if the app is installed there."""
        found = self.log.get(installation_key(owner))
        return None if found is None or found.removed else found

    def installation_id(self, owner: str) -> int | None:
        found = self.installation(owner)
        return None if found is None else found.installation_id

    def repository_installed(self, owner: str, repository: str) -> bool:
        found = self.installation(owner)
        return found is not None and found.covers(repository)

    def _installation_changed(self, change: dict[str, Any]) -> GithubInstallation | None:
        """Apply what a delivery says (``installations.installation_change``); the aggregate if it changed."""
        owner, installation_id, kind = change["owner"], change["installation_id"], change["kind"]
        current: GithubInstallation | None = self.log.get(installation_key(owner))
        if kind == "uninstalled":
            return current if current is not None and current.uninstall(installation_id) else None
        if kind == "installed":
            selection, repositories = change["repository_selection"], change["repositories"]
            if repositories is None:  # an action whose payload lists none (unsuspend): those known
                same = current is not None and current.installation_id == installation_id
                repositories = list(current.repositories) if same else []
        elif kind == "repositories":
            same = current is not None and not current.removed and current.installation_id == installation_id
            before = set(current.repositories) if same else set()
            selection = change["repository_selection"]
            repositories = sorted((before | set(change["added"])) - set(change["removed"]))
        else:
            if current is not None and current.installation_id == installation_id:
                # a delivery through a removed installation does not bring it back; nor is a
                # repository worth recording when the installation covers them all
                if current.removed or current.covers(change["repository"]):
                    return None
                return current if current.add_repositories([change["repository"]]) else None
            selection, repositories = None, [change["repository"]]
        if current is None:
            return GithubInstallation(
                owner=owner, installation_id=installation_id, repository_selection=selection,
                repositories=repositories,
            )
        return current if current.reinstall(installation_id, selection, repositories) else None

    # builds

    def build(self, task_group_id: str) -> GithubBuild | None:
        return self.log.get(build_key(task_group_id))

    def record_build(
        self,
        task_group_id: str,
        organization: str,
        repository: str,
        sha: str,
        event_type: str,
        event_id: str,
        installation_id: int | None,
        created: datetime,
        pull_request_number: int | None = None,
        branch: str | None = None,
        tasks_for: str | None = None,
        reporting: str | None = None,
    ) -> GithubBuild:
        """A task group created for a delivery: a ``pending`` build. The same again is the
        build recorded; another build under the same task group id is ``Conflict``.

        ``organization`` and ``repository`` are GitHub's names (what statuses are posted
        to); the builds view and the Pulse messages write them as Taskcluster does
        (``webhook_events.sanitize_github_field``: ``.`` as ``%``).
        ``event_type`` is Taskcluster's: ``push``, ``tag``, ``pull_request.<action>``,
        ``release``, ``issue_comment.<action>``; ``branch`` is the pushed branch or the
        pull request's head branch, for the badge and latest endpoints.
        """
        fields = dict(
            task_group_id=task_group_id, organization=organization, repository=repository, sha=sha,
            event_type=event_type, event_id=event_id, installation_id=installation_id,
            pull_request_number=pull_request_number, branch=branch, tasks_for=tasks_for, reporting=reporting,
        )

        def record() -> GithubBuild:
            existing = self.build(task_group_id)
            if existing is not None:
                if existing.same_creation(**fields):
                    return existing
                raise Conflict(f"task group {task_group_id} already has another GitHub build")
            build = GithubBuild(created=iso(created), **fields)
            self.log.save(build)
            return build

        return self.log.command(record)

    def record_build_tasks_created(self, task_group_id: str, task_ids: list[str], routes: list[str]) -> bool:
        """The build's tasks are created; ``routes`` are the first task's (Taskcluster CCs
        task-group-creation-requested to them). False if this was recorded already."""

        def record() -> bool:
            build = self.build(task_group_id)
            if build is None:
                raise NotFound(f"no GitHub build for task group {task_group_id}")
            if not build.tasks_created(task_ids, routes):
                return False
            self.log.save(build)
            return True

        return self.log.command(record)

    def set_build_state(self, task_group_id: str, state: str, now: datetime) -> bool:
        """Move a build to ``state`` (one of :data:`BUILD_STATES`); False if it is in it already."""
        if state not in BUILD_STATES:
            raise InvalidInput(f"not a build state: {state}")

        def record() -> bool:
            build = self.build(task_group_id)
            if build is None:
                raise NotFound(f"no GitHub build for task group {task_group_id}")
            if not build.change_state(state, iso(now)):
                return False
            self.log.save(build)
            return True

        return self.log.command(record)

    def cancel_build(self, task_group_id: str, now: datetime) -> bool:
        """The build's task group was cancelled (cancelBuilds, autoCancelPreviousChecks)."""
        return self.set_build_state(task_group_id, "cancelled", now)

    # requests to GitHub

    def request(self, request_id: str) -> GithubRequest | None:
        return self.log.get(request_key(request_id))

    def request_status(
        self, owner: str, repository: str, sha: str, params: dict[str, Any], source: dict[str, Any],
        request_id: str | None = None,
    ) -> GithubRequest:
        """Record a commit status to post (createStatus's body: ``state``, ``target_url``,
        ``description``, ``context``); ``NotFound`` if the app is not installed on ``owner``."""
        return self._record_request(request_id, "status", owner, repository, sha, params, source)

    def request_comment(
        self, owner: str, repository: str, number: int, body: str, source: dict[str, Any],
        request_id: str | None = None,
    ) -> GithubRequest:
        """Record an issue or pull-request comment to post; ``NotFound`` if the app is not installed on ``owner``."""
        return self._record_request(request_id, "comment", owner, repository, str(number), {"body": body}, source)

    def _record_request(
        self, request_id: str | None, kind: str, owner: str, repository: str, target: str,
        params: dict[str, Any], source: dict[str, Any],
    ) -> GithubRequest:
        """A caller that may ask twice (a consumer reading an event again) passes an id
        derived from what it read; then the second ask returns the first request."""
        chosen = request_id or slugid.nice()

        def record() -> GithubRequest:
            existing = self.request(chosen)
            if existing is not None:
                return existing
            installation_id = self.installation_id(owner)
            if installation_id is None:
                raise NotFound(f"the GitHub App is not installed for {owner}")
            request = GithubRequest(
                request_id=chosen, kind=kind, owner=owner, repository=repository, target=target,
                params=params, installation_id=installation_id, source=source,
            )
            self.log.save(request)
            return request

        return self.log.command(record)

    def record_request_posted(self, request_id: str, result: dict[str, Any] | None = None) -> bool:
        return self._outcome(request_id, lambda r: r.posted(result or {}))

    def record_request_attempt_failed(self, request_id: str, error: str, retry_at: str) -> bool:
        return self._outcome(request_id, lambda r: r.attempt_failed(error, retry_at))

    def record_request_failed(self, request_id: str, error: str) -> bool:
        return self._outcome(request_id, lambda r: r.failed(error))

    def _outcome(self, request_id: str, change: Any) -> bool:
        def record() -> bool:
            request = self.request(request_id)
            if request is None or request.final:
                return False
            change(request)
            self.log.save(request)
            return True

        return self.log.command(record)
