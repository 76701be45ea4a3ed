"""The purge-cache service, built from a running Cairn's parts in one place.

Its view is kept in the log's transactions; the reaper's pass records the
lapse of requests past their expiry.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cairn.domain.purge_cache.service import PurgeCacheService
from cairn.domain.timestamps import iso
from cairn.projections.purge_cache.views import PurgeRequestReads, PurgeRequestViews

EXPIRY_BATCH = 500


class PurgeCacheParts:
    def __init__(self, runtime: Any):
        self.views = PurgeRequestViews()
        runtime.store.view_writers.append(self.views)
        self.service = PurgeCacheService(runtime.log)
        self.reads = PurgeRequestReads(runtime.store)

    def expire_requests(self, now: datetime) -> int:
        """The reaper's pass: record the lapse of every purge request past its expiry."""
        return self.service.expire(self.reads.expired(iso(now), EXPIRY_BATCH), now)
