"""Expiry of index entries: a pass of the reaper.

An entry past its ``expires`` is already invisible to readers; this pass
records its ``Expired`` event, which drops the row from the view (and, with
it, namespaces whose own expiry has passed). The event stays in the log.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cairn.domain.timestamps import iso

BATCH = 500


class IndexExpiry:
    def __init__(self, index: Any, reads: Any):
        self.index = index
        self.reads = reads

    def __call__(self, now: datetime) -> int:
        done = 0
        for namespace in self.reads.expired_entries(iso(now), BATCH):
            self.index.expire(namespace, now)
            done += 1
        return done
