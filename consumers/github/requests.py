"""Carrying out the requests to GitHub the API recorded (createStatus, createComment): a consumer of the log.

For each ``GithubRequest.Requested`` it loads the request and, unless it has
ended, makes the call as the app's installation on the owner — a commit
status on the sha, or a comment on the issue or pull request — and records
``Posted`` with what GitHub answered, or ``Failed`` when GitHub refuses it
(a 4xx other than a rate limit). When GitHub cannot answer now the follower
retries from the request, later, without end. At least once: a crash
between GitHub taking the call and ``Posted`` being recorded posts it again;
a request recorded as ended is never made again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from cairn.consumers.github.client import GithubError, GithubUnavailable, Installation
from cairn.consumers.log_follower import Guarantee, LoggedEvent, Unavailable
from cairn.domain.aggregate import acting_as
from cairn.domain.github.model import GithubRequest
from cairn.domain.github.service import GithubService
from cairn.projections.store.moved_topics import topics_of

log = logging.getLogger("cairn.github")

NAME = "github-requests"
ACTOR = "cairn/github"


class RequestPoster:
    name = NAME
    guarantee: Guarantee = "at-least-once"
    topics: tuple[str, ...] = topics_of([GithubRequest.Requested])

    def __init__(self, service: GithubService, installation: Callable[[int], Installation]):
        self.service = service
        self.installation = installation

    def handle(self, session: Any, batch: list[LoggedEvent]) -> None:
        with acting_as(ACTOR):
            for logged in batch:
                self.post(logged.event.originator_id.split("/", 1)[1])

    def post(self, request_id: str) -> str:
        """Make one recorded request unless it has ended; returns its state afterwards."""
        request = self.service.request(request_id)
        if request is None:
            return "missing"
        if request.final:
            return request.state
        if request.installation_id is None:
            self.service.record_request_failed(request_id, "the GitHub App is not installed for this owner")
            return "failed"
        gh = self.installation(request.installation_id)
        try:
            if request.kind == "status":
                answer = gh.create_status(request.owner, request.repository, request.target, request.params)
            elif request.kind == "comment":
                answer = gh.create_issue_comment(
                    request.owner, request.repository, int(request.target), request.params["body"]
                )
            else:
                self.service.record_request_failed(request_id, f"unknown kind of request: {request.kind}")
                return "failed"
        except GithubUnavailable as e:
            raise Unavailable(str(e)) from e
        except GithubError as e:
            log.warning("GitHub refused request %s: %s", request_id, e)
            self.service.record_request_failed(request_id, str(e))
            return "failed"
        self.service.record_request_posted(request_id, {"id": answer.get("id")} if isinstance(answer, dict) else {})
        return "posted"
