"""The notify service's parts, built and run for the composition root (:class:`cairn.runtime.Runtime`).

Views and commands are built with the runtime; the two background
processes start with it: the task notifier (a log follower, one leader
across processes) asks for the notifications of task routes, and the
delivery sends every requested notification through the channels this
deployment configured.
"""

from __future__ import annotations

from typing import Any

from cairn.consumers.log_follower import LogFollower
from cairn.consumers.notify.chat_senders import MatrixSender, SlackSender
from cairn.consumers.notify.delivery import NotificationDelivery, Sender
from cairn.consumers.notify.email_sender import EmailSender
from cairn.consumers.notify.task_notifier import TaskNotifier
from cairn.domain.notify.service import NotifyService
from cairn.projections.notify.task_logs import TaskLogs
from cairn.projections.notify.views import NotifyReadModel, NotifyViews
from cairn.settings import Settings


def senders_from(settings: Settings) -> dict[str, Sender]:
    """The channels this deployment can send on (Pulse needs none: it is derived from the log)."""
    senders: dict[str, Sender] = {}
    if settings.smtp_url:
        senders["email"] = EmailSender(settings.smtp_url, settings.email_from)
    if settings.slack_token:
        senders["slack-channel"] = SlackSender(settings.slack_api_url, settings.slack_token)
    if settings.matrix_base_url and settings.matrix_access_token:
        senders["matrix-room"] = MatrixSender(
            settings.matrix_base_url, settings.matrix_access_token, settings.matrix_user_id
        )
    return senders


class NotifyParts:
    def __init__(self, runtime: Any):
        self.runtime = runtime
        self.views = NotifyViews()
        runtime.store.view_writers.append(self.views)
        self.reads = NotifyReadModel(runtime.store)
        self.service = NotifyService(runtime.log)
        self.task_logs = TaskLogs(runtime.storage_reads, runtime.blob_store)
        self.senders = senders_from(runtime.settings)
        self.configured = frozenset(self.senders) | {"pulse"}
        # Run by the process table (cairn/processes.py): the delivery only where a channel needs one.
        self.notifier = self.make_notifier()
        self.delivery = self.make_delivery() if self.senders else None

    def _conninfo(self) -> str | None:
        settings = self.runtime.settings
        return settings.database_url if settings.backend == "postgres" else None

    def make_notifier(self) -> LogFollower:
        rt = self.runtime
        consumer = TaskNotifier(rt.log, self.service, self.task_logs, rt.settings.root_url, self.configured)
        return LogFollower(rt.log, rt.log_signal, consumer, conninfo=self._conninfo(), reader=rt.log_reader)

    def make_delivery(self) -> NotificationDelivery:
        return NotificationDelivery(
            self.service, self.reads, self.senders, self.runtime.log_signal, self._conninfo()
        )
