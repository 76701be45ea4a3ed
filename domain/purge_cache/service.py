"""The purge-cache application service: record purge requests, and their lapse."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from cairn.domain.event_log import EventLog
from cairn.domain.purge_cache.model import PurgeRequest, purge_request_key
from cairn.domain.timestamps import iso

#: How long a purge request stays open after it was last made.
OPEN_FOR = timedelta(days=1)


class PurgeCacheService:
    def __init__(self, log: EventLog):
        self.log = log

    def purge(self, worker_pool_id: str, cache_name: str, now: datetime) -> None:
        """Ask the pool's workers to purge caches named ``cache_name`` made before ``now``."""
        before, expires = iso(now), iso(now + OPEN_FOR)

        def apply() -> None:
            request = self.log.get(purge_request_key(worker_pool_id, cache_name))
            if request is None:
                request = PurgeRequest(
                    worker_pool_id=worker_pool_id, cache_name=cache_name, before=before, expires=expires
                )
            else:
                request.request_again(before, expires)
            self.log.save(request)

        self.log.command(apply)

    def expire(self, keys: Iterable[tuple[str, str]], now: datetime) -> int:
        """Record the lapse of each (worker pool, cache name) request past its expiry; returns how many."""
        done = 0
        for worker_pool_id, cache_name in keys:

            def apply(key: str = purge_request_key(worker_pool_id, cache_name)) -> int:
                request = self.log.get(key)
                if request is None or not request.lapsed(now):
                    return 0
                request.expire(now)
                self.log.save(request)
                return 1

            done += self.log.command(apply)
        return done
