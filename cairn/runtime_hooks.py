"""The hooks and secrets services, built from a running Cairn's parts in one place.

The runtime makes one :class:`HooksAndSecrets` and calls ``start`` and
``stop``: views kept in the log's transactions, the two application
services, the firing of hooks (tasks created with the hook role's scopes),
the scheduler, the binding listener, and the reaper's pass that records
expired secrets.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cairn.api.hooks.task_creation import hook_task_creator
from cairn.consumers.hook_amqp_listener import HookAmqpListener
from cairn.consumers.hook_listener import HookListener
from cairn.consumers.hook_scheduler import HookScheduler
from cairn.consumers.log_follower import LogFollower
from cairn.domain.hooks.firing import HookFiring
from cairn.domain.hooks.service import HooksService
from cairn.domain.secrets.service import SecretsService
from cairn.domain.timestamps import iso
from cairn.projections.hooks.views import HookReads, HookViews
from cairn.projections.secrets.views import SecretReads, SecretViews

EXPIRY_BATCH = 500


class HooksAndSecrets:
    def __init__(self, runtime: Any):
        store = runtime.store
        self.secret_views = SecretViews()
        self.hook_views = HookViews()
        store.view_writers.extend([self.secret_views, self.hook_views])
        self.secrets = SecretsService(runtime.log, runtime.cipher)
        self.secret_reads = SecretReads(store)
        self.hooks = HooksService(runtime.log, runtime.cipher)
        self.hook_reads = HookReads(store)
        self.firing = HookFiring(runtime.log, hook_task_creator(runtime.queue, runtime.auth_cache.expand))
        self._queue_reads = runtime.queue_reads
        conninfo = runtime.settings.database_url if runtime.settings.backend == "postgres" else None
        self.scheduler = HookScheduler(runtime.log, self.hook_reads, self.firing, runtime.log_signal, conninfo)
        self.listener = LogFollower(
            runtime.log, runtime.log_signal, HookListener(runtime.log, self.hook_reads, self.firing), conninfo=conninfo,
            reader=runtime.log_reader,
        )
        # Bindings on exchanges Cairn does not publish: from RabbitMQ, when there is one.
        self.amqp_listener: HookAmqpListener | None = None
        if runtime.settings.amqp_url:
            self.amqp_listener = HookAmqpListener(
                runtime.settings.amqp_url, runtime.settings.root_url, runtime.log, self.hook_reads, self.firing,
                runtime.log_signal, conninfo,
            )

    def task_states(self, task_ids: list[str]) -> dict[str, str]:
        return {task_id: row["state"] for task_id, row in self._queue_reads.task_rows(task_ids).items()}

    def expire_secrets(self, now: datetime) -> int:
        """The reaper's pass: record the expiry of every secret past it."""
        return self.secrets.expire(self.secret_reads.expired(iso(now), EXPIRY_BATCH), now)
