"""The github views, folded from GithubBuild and GithubRequest events in the transaction that records them.

- ``github_builds``: one row per build, as the builds endpoint lists it and
  cancelBuilds, badge and latest look it up, with the owner and repository
  written as Taskcluster writes them (``.`` as ``%``);
- ``github_build_states``: every state each build entered, when and by whom:
  a build's full history, beside the aggregate's own events;
- ``github_requests``: each request to GitHub and where it stands; the
  requested ones, with the time of their next attempt, are the to-do list of
  the consumer that posts them.

Every row follows from the events alone, so a rebuild replays the log into
the same rows.
"""

from __future__ import annotations

from typing import Any

from cairn.domain.github.model import BUILD_PREFIX, REQUEST_PREFIX, GithubBuild, GithubRequest
from cairn.domain.github.webhook_events import sanitize_github_field
from cairn.domain.timestamps import iso
from cairn.projections.projection import Projection
from cairn.projections.read_model import ReadModel
from cairn.projections.store.session import SqlSession


def _task_group_id(e: Any) -> str:
    return e.originator_id.removeprefix(BUILD_PREFIX)


def _request_id(e: Any) -> str:
    return e.originator_id.removeprefix(REQUEST_PREFIX)


class GithubViews(Projection):
    name = "github"
    tables = ("github_builds", "github_build_states", "github_requests")

    def register(self) -> None:
        self.on(GithubBuild.Created, self.build_created)
        self.on(GithubBuild.StateChanged, self.build_state_changed)
        self.on(GithubBuild.Cancelled, self.build_state_changed)
        self.on(GithubRequest.Requested, self.request_recorded)
        self.on(GithubRequest.Posted, self.request_ended("posted"))
        self.on(GithubRequest.Failed, self.request_ended("failed"))
        self.on(GithubRequest.AttemptFailed, self.request_attempt_failed)

    def build_created(self, session: SqlSession, e: Any, aggregate: Any = None) -> None:
        session.run(
            "insert_github_build",
            {
                "task_group_id": e.task_group_id,
                "organization": sanitize_github_field(e.organization),
                "repository": sanitize_github_field(e.repository),
                "sha": e.sha,
                "event_type": e.event_type,
                "event_id": e.event_id,
                "installation_id": e.installation_id,
                "pull_request_number": e.pull_request_number,
                "branch": e.branch,
                "created": e.created,
            },
        )
        self._state_entered(session, e, "pending")

    def build_state_changed(self, session: SqlSession, e: Any, aggregate: Any = None) -> None:
        state = getattr(e, "state", "cancelled")
        session.run(
            "set_github_build_state", {"task_group_id": _task_group_id(e), "state": state, "updated": e.updated}
        )
        self._state_entered(session, e, state)

    def _state_entered(self, session: SqlSession, e: Any, state: str) -> None:
        session.run(
            "insert_github_build_state",
            {
                "task_group_id": _task_group_id(e),
                "version": e.originator_version,
                "state": state,
                "changed": iso(e.timestamp),
                "actor": e.actor,
            },
        )

    def request_recorded(self, session: SqlSession, e: Any, aggregate: Any = None) -> None:
        session.run(
            "insert_github_request",
            {
                "request_id": e.request_id,
                "kind": e.kind,
                "owner": e.owner,
                "repository": e.repository,
                "target": e.target,
                "requested": iso(e.timestamp),
            },
        )

    def request_ended(self, state: str) -> Any:
        def end(session: SqlSession, e: Any, aggregate: Any = None) -> None:
            session.run(
                "end_github_request",
                {
                    "request_id": _request_id(e),
                    "state": state,
                    "attempts": e.attempts,
                    "last_error": getattr(e, "error", None),
                },
            )

        return end

    def request_attempt_failed(self, session: SqlSession, e: Any, aggregate: Any = None) -> None:
        session.run(
            "retry_github_request",
            {
                "request_id": _request_id(e),
                "attempts": e.attempts,
                "next_attempt": e.retry_at,
                "last_error": e.error,
            },
        )


def _written(name: str | None) -> str | None:
    return None if name is None else sanitize_github_field(name)


def build_json(row: dict[str, Any]) -> dict[str, Any]:
    """A build as the builds and cancelBuilds endpoints give it."""
    build = {
        "organization": row["organization"],
        "repository": row["repository"],
        "sha": row["sha"],
        "state": row["state"],
        "taskGroupId": row["task_group_id"],
        "eventType": row["event_type"],
        "eventId": row["event_id"],
        "created": row["created"],
        "updated": row["updated"],
    }
    if row["pull_request_number"]:
        build["pullRequestNumber"] = int(row["pull_request_number"])
    return build


class GithubReadModel(ReadModel):
    def builds(
        self, after: tuple[str, str], limit: int, organization: str | None = None, repository: str | None = None,
        sha: str | None = None, pull_request_number: int | None = None,
    ) -> list[dict[str, Any]]:
        """One page of builds, least recently updated first, after (updated, taskGroupId).

        Owners and repositories are matched as the view writes them, whether given
        as GitHub names them (``my.org``) or as Taskcluster writes them (``my%org``).
        """
        return self._rows(
            "github_builds_page",
            {
                "after_updated": after[0], "after_id": after[1], "limit": limit,
                "organization": _written(organization), "repository": _written(repository), "sha": sha,
                "pull_request_number": pull_request_number,
            },
        )

    def recent_builds(self, limit: int) -> list[dict[str, Any]]:
        """The most recently updated builds, newest first."""
        return self._rows("recent_github_builds", {"limit": limit})

    def pending_builds(
        self, organization: str, repository: str, sha: str | None = None, pull_request_number: int | None = None
    ) -> list[dict[str, Any]]:
        return self._rows(
            "pending_github_builds",
            {"organization": _written(organization), "repository": _written(repository), "sha": sha,
             "pull_request_number": pull_request_number},
        )

    def latest_build(self, organization: str, repository: str, branch: str) -> dict[str, Any] | None:
        return self._one(
            "latest_github_build",
            {"organization": _written(organization), "repository": _written(repository), "branch": branch},
        )

    def build(self, task_group_id: str) -> dict[str, Any] | None:
        return self._one("github_build_row", {"task_group_id": task_group_id})

    def build_states(self, task_group_id: str) -> list[dict[str, Any]]:
        """Every state the build entered, in order: ``{state, changed, actor}``."""
        return self._rows("github_build_states", {"task_group_id": task_group_id})

    def due_requests(self, now: str, limit: int) -> list[str]:
        """The ids of the requests to GitHub due by ``now``, for the consumer that posts them."""
        return [r["request_id"] for r in self._rows("due_github_requests", {"now": now, "limit": limit})]

    def next_request_due(self) -> str | None:
        row = self._one("next_github_request_due")
        return row["next_attempt"] if row else None
