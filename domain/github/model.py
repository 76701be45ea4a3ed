"""CI from GitHub: the aggregates of the github service.

- :class:`GithubDelivery` is one webhook delivery, keyed by GitHub's
  ``X-GitHub-Delivery`` id, recorded as ``Received`` with its verified body
  before anything acts on it. Consumers that act on it (creating a task
  group, answering a comment) record what they did as ``Handled``, so a
  restarted consumer sees a delivery already handled and does nothing twice.
- :class:`GithubBuild` is one task group created for a delivery: Taskcluster's
  ``github_builds`` row, with every state change an event (``pending`` →
  ``success`` / ``failure`` / ``error`` / ``cancelled``; a rerun moves it back
  to ``pending``).
- :class:`GithubInstallation` is the GitHub App's installation on one owner
  (user or organization): its installation id and which repositories it
  covers, from ``installation`` / ``installation_repositories`` events and
  from any delivery that carries ``installation``.
- :class:`GithubRequest` is one call Cairn is to make to GitHub's REST API
  (a commit status, an issue comment, ...), recorded before it is made; an
  at-least-once consumer makes it and records how it went.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.domain import event

from cairn.domain.aggregate import CairnAggregate
from cairn.domain.errors import Conflict

#: The states of a build, as Taskcluster's builds table has them.
BUILD_STATES = ("pending", "success", "failure", "error", "cancelled")
FINISHED_BUILD_STATES = frozenset({"success", "failure", "error", "cancelled"})
#: The kinds of :class:`GithubRequest` the API records.
REQUEST_KINDS = ("status", "comment")
FINAL_REQUEST_STATES = frozenset({"posted", "failed"})

DELIVERY_PREFIX = "github-delivery/"
BUILD_PREFIX = "github-build/"
INSTALLATION_PREFIX = "github-installation/"
REQUEST_PREFIX = "github-request/"


def delivery_key(delivery_id: str) -> str:
    return f"{DELIVERY_PREFIX}{delivery_id}"


def build_key(task_group_id: str) -> str:
    return f"{BUILD_PREFIX}{task_group_id}"


def installation_key(owner: str) -> str:
    """GitHub logins are case-insensitive: one installation per owner whatever the case."""
    return f"{INSTALLATION_PREFIX}{owner.lower()}"


def request_key(request_id: str) -> str:
    return f"{REQUEST_PREFIX}{request_id}"


class GithubDelivery(CairnAggregate):
    @staticmethod
    def create_id(delivery_id: str, **_: Any) -> str:
        return delivery_key(delivery_id)

    @event("Received")
    def __init__(
        self, delivery_id: str, event_name: str, installation_id: int | None, body: dict[str, Any], received: str
    ) -> None:
        self.delivery_id = delivery_id
        self.event_name = event_name
        self.installation_id = installation_id
        self.body = body
        self.received = received
        #: ``None`` until a consumer has acted on it, then what it did (``created``, ``skipped``, ``failed``, ...).
        self.outcome: str | None = None
        self.detail: dict[str, Any] = {}

    @property
    def action(self) -> str | None:
        action = self.body.get("action")
        return action if isinstance(action, str) else None

    @property
    def handled(self) -> bool:
        return self.outcome is not None

    def handle(self, outcome: str, detail: dict[str, Any]) -> bool:
        """Record what a consumer did with this delivery; False (no event) if one already did."""
        if self.handled:
            return False
        self._handled(outcome=outcome, detail=detail)
        return True

    @event("Handled")
    def _handled(self, outcome: str, detail: dict[str, Any]) -> None:
        self.outcome = outcome
        self.detail = detail


class GithubBuild(CairnAggregate):
    @staticmethod
    def create_id(task_group_id: str, **_: Any) -> str:
        return build_key(task_group_id)

    @event("Created")
    def __init__(
        self,
        task_group_id: str,
        organization: str,
        repository: str,
        sha: str,
        event_type: str,
        event_id: str,
        installation_id: int | None,
        pull_request_number: int | None,
        branch: str | None,
        tasks_for: str | None,
        reporting: str | None,
        created: str,
    ) -> None:
        self.task_group_id = task_group_id
        self.organization = organization
        self.repository = repository
        self.sha = sha
        self.event_type = event_type
        self.event_id = event_id
        self.installation_id = installation_id
        self.pull_request_number = pull_request_number
        self.branch = branch
        self.tasks_for = tasks_for
        self.reporting = reporting
        self.created = created
        self.updated = created
        self.state = "pending"
        #: The routes of the group's first task once its tasks are created (``None`` before).
        self.routes: list[str] | None = None
        self.task_ids: list[str] = []

    def same_creation(self, **fields: Any) -> bool:
        """Whether a creation request with these fields is the one already recorded."""
        return all(getattr(self, name) == value for name, value in fields.items() if name != "created")

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_BUILD_STATES

    def tasks_created(self, task_ids: list[str], routes: list[str]) -> bool:
        """The group's tasks were created (announced on task-group-creation-requested,
        with ``routes`` as CCs); False (no event) if that was recorded already."""
        if self.routes is not None:
            return False
        self._tasks_created(task_ids=task_ids, routes=routes)
        return True

    @event("TasksCreated")
    def _tasks_created(self, task_ids: list[str], routes: list[str]) -> None:
        self.task_ids = list(task_ids)
        self.routes = list(routes)

    def change_state(self, state: str, updated: str) -> bool:
        """Move to ``state``; False (no event) if the build is in it already."""
        if state not in BUILD_STATES:
            raise ValueError(f"not a build state: {state!r}")
        if state == self.state:
            return False
        if state == "cancelled":
            self._cancelled(updated=updated)
        else:
            self._state_changed(state=state, updated=updated)
        return True

    @event("StateChanged")
    def _state_changed(self, state: str, updated: str) -> None:
        self.state = state
        self.updated = updated

    @event("Cancelled")
    def _cancelled(self, updated: str) -> None:
        self.state = "cancelled"
        self.updated = updated


class GithubInstallation(CairnAggregate):
    """``repository_selection`` is GitHub's ``all`` or ``selected``, or ``None`` when only
    deliveries have been seen: then ``repositories`` holds the repositories they came from."""

    @staticmethod
    def create_id(owner: str, **_: Any) -> str:
        return installation_key(owner)

    @event("Installed")
    def __init__(
        self, owner: str, installation_id: int, repository_selection: str | None, repositories: list[str]
    ) -> None:
        self.owner = owner
        self._live(installation_id, repository_selection, repositories)

    def _live(self, installation_id: int, repository_selection: str | None, repositories: list[str]) -> None:
        self.installation_id = installation_id
        self.repository_selection = repository_selection
        self.repositories = sorted(set(repositories))
        self.removed = False

    def covers(self, repository: str) -> bool:
        if self.removed:
            return False
        if self.repository_selection == "all":
            return True
        return repository.lower() in {name.lower() for name in self.repositories}

    def reinstall(self, installation_id: int, repository_selection: str | None, repositories: list[str]) -> bool:
        """Record the installation as GitHub now describes it; False if nothing changed."""
        if (
            not self.removed
            and installation_id == self.installation_id
            and repository_selection == self.repository_selection
            and sorted(set(repositories)) == self.repositories
        ):
            return False
        self._reinstalled(
            installation_id=installation_id, repository_selection=repository_selection, repositories=repositories
        )
        return True

    @event("Reinstalled")
    def _reinstalled(self, installation_id: int, repository_selection: str | None, repositories: list[str]) -> None:
        self._live(installation_id, repository_selection, repositories)

    def add_repositories(self, repositories: list[str]) -> bool:
        added = sorted(set(repositories) - set(self.repositories))
        if not added:
            return False
        self._repositories_added(repositories=added)
        return True

    @event("RepositoriesAdded")
    def _repositories_added(self, repositories: list[str]) -> None:
        self.repositories = sorted(set(self.repositories) | set(repositories))

    def uninstall(self, installation_id: int) -> bool:
        """GitHub says the app was removed; an old id's removal does not undo a newer installation."""
        if self.removed or installation_id != self.installation_id:
            return False
        self._uninstalled()
        return True

    @event("Uninstalled")
    def _uninstalled(self) -> None:
        self.removed = True


class GithubRequest(CairnAggregate):
    """One call to GitHub's REST API, e.g. ``kind="status"`` with ``target`` the sha and
    ``params`` ``{state, target_url, description, context}``, or ``kind="comment"``
    with ``target`` the issue number (as a string) and ``params`` ``{body}``."""

    @staticmethod
    def create_id(request_id: str, **_: Any) -> str:
        return request_key(request_id)

    @event("Requested")
    def __init__(
        self,
        request_id: str,
        kind: str,
        owner: str,
        repository: str,
        target: str,
        params: dict[str, Any],
        installation_id: int | None,
        source: dict[str, Any],
    ) -> None:
        self.request_id = request_id
        self.kind = kind
        self.owner = owner
        self.repository = repository
        self.target = target
        self.params = params
        self.installation_id = installation_id
        #: What asked for it: ``{"api": clientId}``, or ``{"build": taskGroupId}`` from a consumer.
        self.source = source
        self.state = "requested"
        self.attempts = 0
        self.error: str | None = None
        self.result: dict[str, Any] = {}

    @property
    def final(self) -> bool:
        return self.state in FINAL_REQUEST_STATES

    def _check_open(self) -> None:
        if self.final:
            raise Conflict(f"GitHub request {self.request_id} is already {self.state}")

    def posted(self, result: dict[str, Any]) -> None:
        self._check_open()
        self._posted(attempts=self.attempts + 1, result=result)

    @event("Posted")
    def _posted(self, attempts: int, result: dict[str, Any]) -> None:
        self.attempts = attempts
        self.result = result
        self.state = "posted"

    def attempt_failed(self, error: str, retry_at: str) -> None:
        self._check_open()
        self._attempt_failed(attempts=self.attempts + 1, error=error, retry_at=retry_at)

    @event("AttemptFailed")
    def _attempt_failed(self, attempts: int, error: str, retry_at: str) -> None:
        self.attempts = attempts
        self.error = error

    def failed(self, error: str) -> None:
        self._check_open()
        self._failed(attempts=self.attempts + 1, error=error)

    @event("Failed")
    def _failed(self, attempts: int, error: str) -> None:
        self.attempts = attempts
        self.error = error
        self.state = "failed"
