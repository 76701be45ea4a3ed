"""CI from GitHub, the half that acts: deliveries become task groups, builds are reported, requests are made.

Built with the runtime when a GitHub App is configured (``CAIRN_GITHUB_APP_ID``
and its private key): the app's client (``consumers/github/client.py``) and
three processes run by the process table — ``github-builds`` (deliveries
→ tasks) and ``github-reporter`` (statuses and check runs), which follow the
log, and ``github-requests``, which makes the createStatus/createComment
requests the API recorded, with retries. Without an app, deliveries are still recorded, and acted on
once one is configured: each consumer starts from the beginning of the log.
"""

from __future__ import annotations

from typing import Any

from cairn.consumers.github.builds import DeliveryBuilder
from cairn.consumers.github.client import GithubApp, Installation, load_private_key
from cairn.consumers.github.reporting import BuildReporter
from cairn.consumers.github.requests import RequestDelivery
from cairn.domain.github.check_runs import CheckRuns
from cairn.domain.github.service import GithubService
from cairn.domain.github.tcyml import FetchedFile
from cairn.scoped_queue import ScopedQueue
from cairn.settings import Settings

RESOLVED = ("completed", "failed", "exception")


def no_github_app(settings: Settings) -> str | None:
    if settings.github_app_id and (settings.github_private_key or settings.github_private_key_file):
        return None
    return "CAIRN_GITHUB_APP_ID and CAIRN_GITHUB_PRIVATE_KEY(_FILE) are not set: Cairn cannot act on GitHub"


class FlowReads:
    """What the consumers read from the views: builds of a pull request or a commit, a group's task states."""

    def __init__(self, github_reads: Any, queue_reads: Any):
        self.github = github_reads
        self.queue = queue_reads

    def pending_builds_of_pull_request(self, owner: str, repo: str, number: int) -> list[dict[str, Any]]:
        return self.github.pending_builds(owner, repo, pull_request_number=number)

    def build_groups_of_sha(self, owner: str, repo: str, sha: str) -> list[str]:
        rows = self.github.builds(("", ""), 1000, organization=owner, repository=repo, sha=sha)
        return [row["task_group_id"] for row in rows]

    def group_states(self, task_group_id: str) -> list[str]:
        rows = self.queue.task_rows(self.queue.group_task_ids(task_group_id))
        return [row["state"] for row in rows.values()]

    def resolved_tasks(self, task_group_id: str) -> list[str]:
        rows = self.queue.task_rows(self.queue.group_task_ids(task_group_id))
        return sorted(task_id for task_id, row in rows.items() if row["state"] in RESOLVED)


class GithubFlow:
    def __init__(self, runtime: Any):
        settings = runtime.settings
        self.service = GithubService(runtime.log)
        self.check_runs = CheckRuns(runtime.log)
        self.app: GithubApp | None = None
        if no_github_app(settings) is None:
            key = load_private_key(settings.github_private_key, settings.github_private_key_file)
            self.app = GithubApp(settings.github_app_id, key, settings.github_api_url)
        self.scoped_queue = ScopedQueue(runtime.queue, runtime.auth_cache.expand)
        self.reads = FlowReads(runtime.github.reads, runtime.queue_reads)
        self.builder = DeliveryBuilder(
            self.service, self.installation, self.scoped_queue, self.reads, settings.root_url, self.check_runs
        )
        self.reporter = BuildReporter(
            runtime.log, self.service, self.installation, self.check_runs, self.reads.group_states,
            lambda task_id, run_id: runtime.notify.task_logs.tail(task_id, run_id, 1000), settings.root_url,
        )
        conninfo = settings.database_url if settings.backend == "postgres" else None
        self.requests = RequestDelivery(
            self.service, runtime.github.reads, self.installation, runtime.log_signal, conninfo
        )
        if self.app is not None:
            # renderTaskclusterYml reads config-from files through the app too.
            runtime.github.fetch_file = self.fetch_file

    def fetch_file(self, owner: str, repo: str, path: str, ref: str) -> FetchedFile:
        """A file at a ref, read as the app's installation on ``owner`` (for ``config-from``)."""
        installation_id = self.service.installation_id(owner)
        if installation_id is None:
            raise LookupError(f"the GitHub App is not installed for {owner}")
        return self.builder.fetcher(self.installation(installation_id))(owner, repo, path, ref)

    def installation(self, installation_id: int) -> Installation:
        if self.app is None:
            raise RuntimeError("no GitHub App is configured")
        return self.app.installation(installation_id)

    def close(self) -> None:
        if self.app is not None:
            self.app.close()
