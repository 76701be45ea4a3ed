"""The workers' application service: quarantine a worker, or declare one.

Each command loads (or starts) the worker's aggregate, records one event and
saves it; the worker view follows in the same transaction. A worker can be
quarantined only once the queue knows it — it has claimed work or declared
itself — as Taskcluster does; declaring makes a worker known.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from cairn.domain.errors import NotFound
from cairn.domain.event_log import EventLog
from cairn.domain.queue.worker import Worker, worker_key


class WorkerReads(Protocol):
    """The worker view, read inside the current transaction."""

    def worker_known(self, task_queue_id: str, worker_group: str, worker_id: str) -> bool: ...


class WorkerService:
    def __init__(self, log: EventLog, reads: WorkerReads):
        self.log = log
        self.reads = reads

    def worker(self, task_queue_id: str, worker_group: str, worker_id: str) -> Worker:
        existing = self.log.get(worker_key(task_queue_id, worker_group, worker_id))
        if existing is not None:
            return existing
        return Worker(task_queue_id=task_queue_id, worker_group=worker_group, worker_id=worker_id)

    def quarantine(
        self, task_queue_id: str, worker_group: str, worker_id: str, until: datetime, reason: str
    ) -> Worker:
        def quarantine() -> Worker:
            if not self.reads.worker_known(task_queue_id, worker_group, worker_id):
                raise NotFound(
                    f"Worker with workerId `{worker_id}`, workerGroup `{worker_group}` and "
                    f"taskQueueId `{task_queue_id}` not found."
                )
            worker = self.worker(task_queue_id, worker_group, worker_id)
            worker.quarantine(until, reason)
            self.log.save(worker)
            return worker

        return self.log.command(quarantine)

    def declare(self, task_queue_id: str, worker_group: str, worker_id: str, expires: datetime) -> Worker:
        def declare() -> Worker:
            worker = self.worker(task_queue_id, worker_group, worker_id)
            worker.declare(expires)
            self.log.save(worker)
            return worker

        return self.log.command(declare)
