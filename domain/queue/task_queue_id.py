"""A task queue's id, ``<provisionerId>/<workerType>``, and its two halves.

Taskcluster named queues by a provisioner and a worker type before it named
them by one id; its API still answers with all three, so the id is split in
one place, here, and nowhere by hand.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass


@dataclass(frozen=True)
class TaskQueueId:
    provisioner_id: str
    worker_type: str

    @classmethod
    def parse(cls, task_queue_id: str) -> TaskQueueId:
        """Split an id at its first slash (a worker type has none)."""
        return _parsed(cls, task_queue_id)

    def __str__(self) -> str:
        return f"{self.provisioner_id}/{self.worker_type}"

    def fields(self) -> dict[str, str]:
        """The queue as Taskcluster's responses name it: both halves and the whole."""
        return {"provisionerId": self.provisioner_id, "workerType": self.worker_type, "taskQueueId": str(self)}

    def halves(self) -> dict[str, str]:
        """Only the two halves, for bodies that put ``taskQueueId`` elsewhere."""
        return {"provisionerId": self.provisioner_id, "workerType": self.worker_type}


@functools.lru_cache(maxsize=4096)
def _parsed(cls: type[TaskQueueId], task_queue_id: str) -> TaskQueueId:
    """``TaskQueueId.parse``, remembered: a busy queue's id is split for every task and claim on it."""
    provisioner_id, _, worker_type = task_queue_id.partition("/")
    return cls(provisioner_id, worker_type)
