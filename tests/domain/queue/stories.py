"""Task definitions for the queue's stories, at a fixed time."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from cairn.domain.timestamps import iso

NOW = datetime(2030, 6, 1, 12, 0, tzinfo=timezone.utc)
QUEUE = "stories/worker"


def body(now: datetime = NOW, **overrides: Any) -> dict[str, Any]:
    """A createTask body as a scheduler sends it: created now, due in an hour."""
    return {
        "taskQueueId": QUEUE,
        "created": iso(now),
        "deadline": iso(now + timedelta(hours=1)),
        "payload": {},
        "metadata": {"name": "story", "description": "", "owner": "tests@example.com", "source": "https://example.com"},
        **overrides,
    }
