"""Asking for the notifications of tasks' ``notify.*`` routes: a consumer of the log.

For every change of a task's state (defined, pending, running, resolved)
it reads the task as it stood right after that event, works out what its
routes ask for (``domain/notify/task_routes.py``) and records each as a
requested Notification caused by ``cairn/notify``; the delivery sends them.
A route to a channel this deployment has not configured records a skipped
notification, so the history says why nothing arrived.

Its guarantee is **at least once**, its effect exactly once: a
notification's id is derived from the task event and the route, so after
a crash the replayed tail finds its notifications recorded and asks for
nothing again. On PostgreSQL one process leads it (the follower's
advisory lock).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any

from eventsourcing.persistence import InterfaceError, OperationalError

from cairn.consumers.log_follower import Guarantee, LoggedEvent
from cairn.domain.aggregate import acting_as
from cairn.domain.notify.service import NotifyService
from cairn.domain.notify.task_routes import PREFIX, notifications_for
from cairn.domain.queue.task import Task
from cairn.projections.store.moved_topics import topics_of

log = logging.getLogger("cairn.notify")

NAME = "task-notifier"
ACTOR = "cairn/notify"


class TaskNotifier:
    name = NAME
    guarantee: Guarantee = "at-least-once"
    topics: tuple[str, ...] = topics_of(
        [Task.Defined, Task.RunPending, Task.RunClaimed, Task.RunResolved, Task.UnscheduledResolved]
    )

    def __init__(
        self,
        event_log: Any,
        notify: NotifyService,
        task_logs: Any,
        root_url: str,
        configured: frozenset[str],
        remembered: int = 5_000,
    ):
        self.log = event_log
        self.notify = notify
        self.task_logs = task_logs
        self.root_url = root_url
        self.configured = configured
        # Whether a recently seen task has notify routes: most have none and
        # need no load. A task defined before this process started is loaded once.
        self._routes: OrderedDict[str, bool] = OrderedDict()
        self._remembered = remembered

    def handle(self, session: Any, batch: list[LoggedEvent]) -> bool:
        """Record what the batch's tasks' routes ask for; False if no event in it asked anything."""
        acted = False
        with acting_as(ACTOR):
            for logged in batch:
                e = logged.event
                if isinstance(e, Task.Defined):
                    self._remember(e.originator_id, e.definition)
                if self._routes.get(e.originator_id) is False:
                    continue
                try:
                    acted = self.notify_for(e) > 0 or acted
                except (OperationalError, InterfaceError):
                    raise  # the database: the follower retries the batch
                except Exception:
                    acted = True  # given up on, as before: not tried again on the next batch
                    log.exception("notifications of %s v%s not recorded", e.originator_id, e.originator_version)
        return acted

    def _remember(self, task_key: str, definition: dict[str, Any]) -> None:
        prefix = PREFIX + "."
        self._routes[task_key] = any(r.startswith(prefix) for r in definition.get("routes", ()))
        if len(self._routes) > self._remembered:
            self._routes.popitem(last=False)

    def notify_for(self, e: Any) -> int:
        task = self.log.repository.get(e.originator_id, version=e.originator_version)
        if e.originator_id not in self._routes:
            self._remember(e.originator_id, task.definition)
        wanted = notifications_for(
            e.originator_id,
            e.originator_version,
            getattr(e, "run_id", None),
            task.current_definition(),
            task.status(),
            self.root_url,
            self.task_logs.tail,
        )
        for n in wanted:
            skip = None if n.channel in self.configured else f"{n.channel} is not configured"
            self.notify.request(n.notification_id, n.channel, n.address, n.content, n.source, skip_reason=skip)
        return len(wanted)
