"""What the purge-cache handlers see of a running Cairn: one small, typed context."""

from __future__ import annotations

from dataclasses import dataclass

from cairn.domain.purge_cache.service import PurgeCacheService
from cairn.projections.purge_cache.views import PurgeRequestReads


@dataclass(frozen=True)
class PurgeCacheContext:
    service: PurgeCacheService
    reads: PurgeRequestReads
