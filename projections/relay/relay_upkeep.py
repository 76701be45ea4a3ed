"""What the relay needs of the queue's views, and its reaper pass."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from cairn.projections.relay.live_logs import LiveLogStore
from cairn.projections.relay.shell_sessions import ShellStore


def run_state(queue_reads: Any, task_id: str, run_id: int) -> str | None:
    """The state of a task's run as the queue's views hold it; None when there is no such run."""
    row = queue_reads.task_rows([task_id]).get(task_id)
    if row is None:
        return None
    runs = orjson.loads(row["status"])["runs"]
    return runs[run_id]["state"] if 0 <= run_id < len(runs) else None


class RelayUpkeep:
    """A reaper pass: drops the live logs and shell sessions whose time is over. Issues no command."""

    def __init__(self, store: Any, queue_reads: Any):
        self.logs = LiveLogStore(store)
        self.shells = ShellStore(store)
        self.queue_reads = queue_reads

    def __call__(self, now: datetime) -> int:
        moment = now.timestamp()
        self.logs.prune(moment, lambda task_id, run_id: run_state(self.queue_reads, task_id, run_id) != "running")
        self.shells.prune(moment)
        return 0
