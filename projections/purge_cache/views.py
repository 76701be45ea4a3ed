"""The purge requests view: the open requests, kept in the transaction of each purge-request event."""

from __future__ import annotations

from typing import Any

from cairn.domain.purge_cache.model import PurgeRequest
from cairn.projections.projection import Projection
from cairn.projections.store.session import SqlSession


class PurgeRequestViews(Projection):
    name = "purge-cache"
    tables = ("purge_requests",)

    def register(self) -> None:
        self.on(PurgeRequest.Requested, self.requested)
        self.on(PurgeRequest.RequestedAgain, self.requested)
        self.on(PurgeRequest.Expired, self.expired)

    def requested(self, session: SqlSession, e: Any, _: Any = None) -> None:
        pool, name = _key(e)
        session.run(
            "upsert_purge_request",
            {"worker_pool_id": pool, "cache_name": name, "purge_before": e.before, "expires": e.expires},
        )

    def expired(self, session: SqlSession, e: Any, _: Any = None) -> None:
        pool, name = _key(e)
        session.run("delete_purge_request", {"worker_pool_id": pool, "cache_name": name})


def _key(e: Any) -> tuple[str, str]:
    """(worker pool id, cache name) from the aggregate id: the pool id is its first two segments."""
    provisioner, worker_type, cache_name = e.originator_id.removeprefix("purge-cache/").split("/", 2)
    return f"{provisioner}/{worker_type}", cache_name


class PurgeRequestReads:
    def __init__(self, store: Any):
        self.store = store

    def all(self, now: str, after: tuple[str, str], limit: int) -> list[dict[str, str]]:
        """Up to ``limit`` open requests after the (worker pool, cache name) pair ``after``, in order."""
        params = {"now": now, "after_pool": after[0], "after_cache": after[1], "limit": limit}
        with self.store.reading() as session:
            return session.rows("list_purge_requests", params)

    def of_pool(self, worker_pool_id: str, now: str, since: str) -> list[dict[str, str]]:
        """The pool's open requests whose ``before`` is at or after ``since``."""
        params = {"worker_pool_id": worker_pool_id, "now": now, "since": since}
        with self.store.reading() as session:
            return session.rows("worker_pool_purge_requests", params)

    def expired(self, now: str, limit: int) -> list[tuple[str, str]]:
        with self.store.reading() as session:
            rows = session.rows("expired_purge_requests", {"now": now, "limit": limit})
        return [(row["worker_pool_id"], row["cache_name"]) for row in rows]
