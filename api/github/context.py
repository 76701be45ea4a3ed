"""What the github handlers see of a running Cairn: one small, typed context."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cairn.domain.github.service import GithubService
from cairn.projections.github.views import GithubReadModel
from cairn.scoped_queue import ScopedQueue

#: fetch_file(owner, repo, path, ref) -> the file and the revision ``ref`` resolved to
#: (``tcyml.FetchedFile``); raises when there is no such file. Used for ``config-from``.
FetchFile = Callable[[str, str, str, str], Any]


@dataclass(frozen=True)
class GithubContext:
    service: GithubService
    reads: GithubReadModel
    #: Seals and cancels task groups with the scopes cancelBuilds is limited to.
    scoped_queue: ScopedQueue
    #: The secret deliveries are signed with; empty refuses every delivery.
    webhook_secret: str
    root_url: str
    fetch_file: FetchFile
