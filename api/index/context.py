"""What the index's handlers may use, and nothing else."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cairn.domain.index.service import IndexService
from cairn.domain.queue.run_credentials import Issuer
from cairn.projections.index.views import IndexReadModel


@dataclass(frozen=True)
class IndexContext:
    service: IndexService
    reads: IndexReadModel
    root_url: str
    #: Signs the queue URLs of non-public artifacts the index redirects to.
    signer: Issuer
    #: The scopes every caller holds: the ``anonymous`` role's, expanded now.
    anonymous_scopes: Callable[[], list[str]]
