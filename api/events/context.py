"""What the event stream's handler may use, and nothing else."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol


class Subscriptions(Protocol):
    def subscribe(self, stream_filter: Any, after: Any) -> AsyncIterator[Any]:
        """The messages that match ``stream_filter``, from after position ``after`` (None: from now)."""

    async def now(self) -> Any:
        """The position of the present."""


@dataclass(frozen=True)
class EventsContext:
    stream: Subscriptions
