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

It reads only definitions and resolutions (a topic filter): the follower
reads the log's head before each batch, so its position never moves past an
event that was not yet visible when read.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any

from cairn.consumers.log_follower import Guarantee, LoggedEvent
from cairn.domain.aggregate import acting_as
from cairn.domain.errors import DomainError
from cairn.domain.index.model import ROUTE_PREFIX, completion_requests
from cairn.domain.index.service import IndexService
from cairn.domain.queue.task import Task
from cairn.domain.timestamps import utcnow
from cairn.projections.store.moved_topics import topics_of

log = logging.getLogger("cairn.index")

NAME = "task-indexer"
ACTOR = "cairn/index"


class TaskIndexer:
    name = NAME
    guarantee: Guarantee = "at-least-once"
    topics: tuple[str, ...] = topics_of([Task.Defined, Task.RunResolved])

    def __init__(self, event_log: Any, index: IndexService, remembered: int = 5_000):
        self.log = event_log
        self.index = index
        # Whether a recently defined task names index routes, seen as its
        # definition went by: a completion of a task that names none needs
        # no load. A task defined before this process started is loaded.
        self._routes: OrderedDict[str, bool] = OrderedDict()
        self._remembered = remembered

    def handle(self, session: Any, batch: list[LoggedEvent]) -> None:
        with acting_as(ACTOR):
            for logged in batch:
                e = logged.event
                if isinstance(e, Task.Defined):
                    self._remember(e.originator_id, e.definition)
                elif isinstance(e, Task.RunResolved) and e.state == "completed":
                    if self._routes.get(e.originator_id) is not False:
                        self.index_completion(e.originator_id, logged.position)

    def _remember(self, task_key: str, definition: dict[str, Any]) -> None:
        self._routes[task_key] = any(r.startswith(ROUTE_PREFIX) for r in definition.get("routes", ()))
        if len(self._routes) > self._remembered:
            self._routes.popitem(last=False)

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
