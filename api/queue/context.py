"""What the queue's handlers may use, and nothing else.

Commands go through the queue, worker and artifact services (domain);
reads come from the queue, worker and storage views; claimWork waits on
``wake``; claims and artifact transfers get credentials signed by
``credentials``; artifact data moves through signed ``links``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from cairn.api.history import ReadHistory
from cairn.api.signed_urls import DataLinks
from cairn.domain.queue.artifact_service import ArtifactService
from cairn.domain.queue.run_credentials import Issuer
from cairn.domain.queue.service import QueueService
from cairn.domain.queue.worker_service import WorkerService
from cairn.projections.history import HistoryEntry
from cairn.projections.objects.storage_reads import StorageReadModel
from cairn.projections.queue.reads import QueueReadModel
from cairn.projections.queue.worker_views import WorkerReadModel


class PendingWork(Protocol):
    """Tells a waiting claimWork that work may have arrived on its task queue."""

    def generation(self, task_queue_id: str) -> int:
        """A number that moves whenever a run of the queue may have become pending."""

    async def wait(self, task_queue_id: str, seen: int, timeout: float) -> None:
        """Return once the generation moves past ``seen``, or after ``timeout`` seconds."""


@dataclass(frozen=True)
class QueueContext:
    service: QueueService
    reads: QueueReadModel
    workers: WorkerService
    worker_reads: WorkerReadModel
    artifacts: ArtifactService
    storage: StorageReadModel
    wake: PendingWork
    #: Seconds after which a waiting claimWork looks again, notified or not.
    recheck: float
    credentials: Issuer
    links: DataLinks
    history: ReadHistory
    #: (taskGroupId, after position, limit) → one page of a group's and its tasks' events, in log order.
    group_history: Callable[[str, int, int], list[tuple[str | None, HistoryEntry]]]
    validate_output: bool = False
