"""What the notify API's handlers see: the notify service's commands and views, and the channels configured."""

from __future__ import annotations

from dataclasses import dataclass

from cairn.domain.notify.service import NotifyService
from cairn.projections.notify.views import NotifyReadModel


@dataclass(frozen=True)
class NotifyContext:
    notify: NotifyService
    reads: NotifyReadModel
    #: The channels this deployment can send on.
    configured: frozenset[str]
