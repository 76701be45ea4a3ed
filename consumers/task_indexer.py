"""Indexing completed tasks: a consumer of the log, as Taskcluster's index consumes Pulse.

For every run resolved as ``completed``, the task indexer inserts the task
under each of its ``index.<namespace>`` routes, with the rank, expiry and
data of its ``extra.index`` — commands recorded as IndexedTask events caused
by ``cairn/index``, like any other.

Its guarantee is **at least once**, and its effect exactly once. The
follower records its position only after a whole batch is handled, so a
crash hands the unrecorded tail over again; each insert names the log
position of the completion it comes from, and an entry ignores a position
it has already taken (see ``IndexedTask.insert``). A replay therefore
changes nothing that was done, and does what was not. Exactly-once in the
follower's sense — every insert and the position in one transaction — would
hold the event log's write lock for a whole batch on PostgreSQL and stall
every other writer meanwhile; this way each insert is its own short command.

Resolutions are read from the whole log (no topic filter), so that the
position never moves past an event that was not yet visible when read.
"""

from __future__ import annotations

import logging
from typing import Any

from cairn.consumers.log_follower import Guarantee, LoggedEvent
from cairn.domain.aggregate import acting_as
from cairn.domain.errors import DomainError
from cairn.domain.index_model import completion_requests
from cairn.domain.index_service import IndexService
from cairn.domain.task_model import Task
from cairn.domain.timestamps import utcnow

log = logging.getLogger("cairn.index")

NAME = "task-indexer"
ACTOR = "cairn/index"


class TaskIndexer:
    name = NAME
    guarantee: Guarantee = "at-least-once"
    topics: tuple[str, ...] = ()

    def __init__(self, event_log: Any, index: IndexService):
        self.log = event_log
        self.index = index

    def handle(self, session: Any, batch: list[LoggedEvent]) -> None:
        with acting_as(ACTOR):
            for logged in batch:
                e = logged.event
                if isinstance(e, Task.RunResolved) and e.state == "completed":
                    self.index_completion(e.originator_id, logged.position)

    def index_completion(self, task_key: str, position: int) -> None:
        task = self.log.get(task_key)
        if task is None or task.expired:
            return
        now = utcnow()
        for request in completion_requests(task.definition):
            try:
                self.index.insert(
                    request.namespace,
                    task.task_id,
                    request.rank,
                    request.data,
                    request.expires,
                    now,
                    source_position=position,
                )
            except DomainError as e:
                log.warning("task %s not indexed at %s: %s", task.task_id, request.namespace, e.message)
