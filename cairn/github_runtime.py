"""The github service's parts, built for the composition root (:class:`cairn.runtime.Runtime`).

Its views are kept in the transaction of every github event; its commands
record deliveries, builds, installations and requests to GitHub. The API's
cancelBuilds seals and cancels task groups through :class:`ScopedQueue` with
the scopes Taskcluster-GitHub limits itself to.
"""

from __future__ import annotations

from typing import Any

from cairn.domain.github.service import GithubService
from cairn.projections.github.views import GithubReadModel, GithubViews
from cairn.scoped_queue import ScopedQueue


def no_github_app(owner: str, repo: str, path: str, ref: str) -> Any:
    """What fetches ``config-from`` files until a GitHub App client is configured: nothing."""
    raise LookupError(f"cannot fetch {owner}/{repo}/{path}@{ref}: no GitHub App is configured to read it")


class GithubParts:
    def __init__(self, runtime: Any):
        self.views = GithubViews()
        runtime.store.view_writers.append(self.views)
        self.reads = GithubReadModel(runtime.store)
        self.service = GithubService(runtime.log)
        self.scoped_queue = ScopedQueue(runtime.queue, runtime.auth_cache.expand)
        self.webhook_secret = runtime.settings.github_webhook_secret
        #: fetch_file(owner, repo, path, ref) for ``config-from`` (see ``api/github/context.py``).
        self.fetch_file = no_github_app
