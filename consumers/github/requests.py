"""Carrying out the requests to GitHub the API recorded (createStatus, createComment), with recorded attempts.

The to-do list is the ``github_requests`` view: a request recorded as
``Requested`` is due at once, and after a failed attempt again at the time
that attempt recorded. For each due request the loop loads the aggregate
and acts only if it has not ended, making the call as the App's
installation on the owner — a commit status on the sha, or a comment on the
issue or pull request — and records ``Posted`` with GitHub's id, or
``AttemptFailed`` when GitHub cannot answer now (retried after a backoff
that doubles up to a ceiling), or ``Failed`` when GitHub refuses it (a 4xx
other than a rate limit) or after the last attempt. A crash between GitHub
taking the call and ``Posted`` being recorded is the one window in which a
request can be made twice.

On PostgreSQL only the process holding the loop's advisory lock works
(:class:`LedLoop`). A commit anywhere in the process (or, on PostgreSQL, in
any process) wakes it; without one it looks again within a second, and
when the next retry is due.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from starlette.concurrency import run_in_threadpool

from cairn.consumers.github.client import GithubError, GithubUnavailable, Installation
from cairn.consumers.led_loop import DueLoop
from cairn.consumers.log_signal import LogSignal
from cairn.domain.aggregate import acting_as
from cairn.domain.github.model import GithubRequest
from cairn.domain.github.service import GithubService
from cairn.domain.timestamps import iso, utcnow

log = logging.getLogger("cairn.github")

NAME = "github-requests"
ACTOR = "cairn/github"


@dataclass(frozen=True)
class Backoff:
    """Seconds before attempt ``n + 1`` after ``n`` failed ones; after ``attempts`` failures, give up."""

    first: float = 2.0
    ceiling: float = 600.0
    attempts: int = 30  # a few hours of GitHub down, at the ceiling

    def delay(self, failed: int) -> float:
        return min(self.ceiling, self.first * 2 ** max(0, failed - 1))


def make_request(gh: Installation, request: GithubRequest) -> dict[str, Any]:
    """The call a request stands for; raises ``GithubError`` for a kind GitHub would not know."""
    if request.kind == "status":
        return gh.create_status(request.owner, request.repository, request.target, request.params)
    if request.kind == "comment":
        return gh.create_issue_comment(request.owner, request.repository, int(request.target), request.params["body"])
    raise GithubError(400, f"unknown kind of request: {request.kind}")


class RequestDelivery(DueLoop):
    name = NAME
    logger = log

    def __init__(self, service: GithubService, reads: Any, installation: Callable[[int], Installation],
                 signal: LogSignal, conninfo: str | None = None, *, backoff: Backoff = Backoff(),
                 batch: int = 50, idle_wait: float = 1.0, coalesce: float = 0.02):
        self.service = service
        self.reads = reads
        self.installation = installation
        self.backoff = backoff
        super().__init__(signal, conninfo, batch=batch, idle_wait=idle_wait, coalesce=coalesce)

    def next_due(self) -> str | None:
        return self.reads.next_request_due()

    async def deliver_due(self) -> int:
        """Make one batch of due requests, one at a time (GitHub asks for no concurrent writes)."""
        due = await run_in_threadpool(self.reads.due_requests, iso(utcnow()), self.batch)
        for request_id in due:
            try:
                await run_in_threadpool(self.deliver, request_id)
            except Exception:
                log.exception("making GitHub request %s failed; it stays due", request_id)
            await asyncio.sleep(0)
        return len(due)

    def deliver(self, request_id: str) -> str:
        """Make one request unless it has ended; returns its state afterwards."""
        with acting_as(ACTOR):
            request = self.service.request(request_id)
            if request is None or request.final:
                return request.state if request is not None else "missing"
            if request.installation_id is None:
                self.service.record_request_failed(request_id, "the GitHub App is not installed for this owner")
                return "failed"
            try:
                answer = make_request(self.installation(request.installation_id), request)
            except GithubUnavailable as e:
                return self._failed(request, str(e), permanent=False)
            except GithubError as e:
                return self._failed(request, str(e), permanent=True)
            result = {"id": answer.get("id")} if isinstance(answer, dict) else {}
            self.service.record_request_posted(request_id, result)
            return "posted"

    def _failed(self, request: GithubRequest, error: str, permanent: bool) -> str:
        failed = request.attempts + 1
        if permanent or failed >= self.backoff.attempts:
            log.warning("GitHub request %s failed for good: %s", request.request_id, error)
            self.service.record_request_failed(request.request_id, error)
            return "failed"
        retry_at = iso(utcnow() + timedelta(seconds=self.backoff.delay(failed)))
        self.service.record_request_attempt_failed(request.request_id, error, retry_at)
        return "requested"
