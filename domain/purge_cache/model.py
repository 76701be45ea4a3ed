"""Purge requests: "workers of this pool, delete your caches named so, if made before this time".

One aggregate per worker pool and cache name. Asking again moves its
``before`` to the time of asking, as Taskcluster's purge-cache does; a
request lapses a day after it was last made (workers consult requests
before each task, so a day is far longer than any of them needs), and
asking after that continues the same history.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from eventsourcing.domain import event

from cairn.domain.aggregate import CairnAggregate
from cairn.domain.timestamps import parse_time

PREFIX = "purge-cache/"


def purge_request_key(worker_pool_id: str, cache_name: str) -> str:
    # A worker pool id holds exactly one slash, so the cache name is what follows the second.
    return f"{PREFIX}{worker_pool_id}/{cache_name}"


class PurgeRequest(CairnAggregate):
    @staticmethod
    def create_id(worker_pool_id: str, cache_name: str, **_: Any) -> str:
        return purge_request_key(worker_pool_id, cache_name)

    @event("Requested")
    def __init__(self, worker_pool_id: str, cache_name: str, before: str, expires: str) -> None:
        self.worker_pool_id = worker_pool_id
        self.cache_name = cache_name
        self.before = before
        self.expires = expires
        self.expired = False

    def request_again(self, before: str, expires: str) -> None:
        self._requested_again(before, expires)

    @event("RequestedAgain")
    def _requested_again(self, before: str, expires: str) -> None:
        self.before = before
        self.expires = expires
        self.expired = False

    def lapsed(self, now: datetime) -> bool:
        return not self.expired and parse_time(self.expires) <= now

    def expire(self, now: datetime) -> None:
        """Record that the request lapsed; only an open request past its expiry does."""
        if self.lapsed(now):
            self._expired()

    @event("Expired")
    def _expired(self) -> None:
        self.expired = True
