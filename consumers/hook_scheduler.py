"""The hook scheduler: fires each hook at the times its schedule gives.

It sleeps until the soonest next scheduled date of any hook, and wakes
early whenever the log moves (a hook created, changed or removed, in this
process or, through PostgreSQL's notifications, in another), to look again
at the soonest date — one indexed query, no minute polling. On waking it
fires every hook that is due.

Each due time fires once: the fire records the hook's next date in the
same event, and a second attempt (another process, a retry) finds the date
moved and records nothing; its task id is fixed by the due time, so even a
repeated createTask names the same task. On PostgreSQL only the process
holding the scheduler's advisory lock fires at all. After downtime, a hook
whose date passed fires once for it, and its next date is the first after
now.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from cairn.consumers.leadership import Leadership
from cairn.consumers.log_signal import LogSignal
from cairn.domain.aggregate import acting_as
from cairn.domain.hooks.firing import HookFiring
from cairn.domain.hooks.model import hook_key
from cairn.domain.timestamps import iso, parse_time, utcnow

log = logging.getLogger("cairn.hooks.scheduler")

NAME = "hook-scheduler"
ACTOR = "cairn/hooks"
BATCH = 100
#: The longest sleep: a lost notification of another process's change costs at most this.
LONGEST_SLEEP = 30.0
#: After an early wake-up, commits that follow within this are taken together:
#: a busy log costs at most a few queries a second.
COALESCE = 0.2


class HookScheduler:
    name = NAME

    def __init__(self, event_log: Any, reads: Any, firing: HookFiring, signal: LogSignal, conninfo: str | None):
        self.log = event_log
        self.reads = reads
        self.firing = firing
        self.signal = signal
        self.leadership = Leadership(conninfo, NAME)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True, name="cairn-hook-scheduler")
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self.signal.bump()
        if self._thread is not None:
            self._thread.join(timeout)
        self.leadership.release()

    def fire_due(self) -> int:
        """Fire every hook whose scheduled date has come; returns how many fired."""
        fired = 0
        now = utcnow()
        for group, hook_id in self.reads.due(iso(now), BATCH):
            try:
                hook = self.log.get(hook_key(group, hook_id))
                if hook is None:
                    continue
                with acting_as(ACTOR):
                    if self.firing.fire_scheduled(hook, utcnow()) is not None:
                        fired += 1
            except Exception:
                log.exception("hook %s/%s could not fire; it stays due", group, hook_id)
        return fired

    def seconds_to_next(self) -> float:
        soonest = self.reads.soonest()
        if soonest is None:
            return LONGEST_SLEEP
        wait = (parse_time(soonest) - utcnow()).total_seconds()
        return min(max(wait, 0.0), LONGEST_SLEEP)

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self.leadership.held():
                self._stop.wait(2.0)
                continue
            seen = self.signal.generation
            try:
                self.fire_due()
                wait = self.seconds_to_next()
            except Exception:
                log.exception("the hook scheduler failed; retrying")
                self._stop.wait(1.0)
                continue
            if wait > 0:
                due_at = time.monotonic() + wait
                self.signal.wait(seen, wait)
                # Woken early by a commit: let the commits of a busy log pass
                # together, but never past the due time.
                self._stop.wait(min(COALESCE, max(0.0, due_at - time.monotonic())))
            else:
                # Still due after firing: a hook that could not fire. Not a busy loop.
                self._stop.wait(1.0)
