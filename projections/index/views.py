"""The index views, folded from IndexedTask events in the transaction that records them.

- ``index_entries``: the entry at each indexed path (task, rank, data, expiry);
- ``index_namespaces``: every namespace above an entry, for listNamespaces.
  A namespace outlives the entries below it, as in Taskcluster: it expires
  after the latest entry ever inserted under it, rounded up to the next
  midnight, and is dropped when an expiry is recorded after that time.

Every row follows from the events alone — the handlers never look at the
aggregates — so :func:`rebuild_index` replays the log into the same rows.
Reads leave out what has expired but is not reaped yet.
"""

from __future__ import annotations

from typing import Any

import orjson

from cairn.domain.index.model import IndexedTask, parent_namespaces, split_namespace
from cairn.domain.timestamps import iso, next_midnight, parse_time
from cairn.projections.projection import Projection
from cairn.projections.read_model import ReadModel
from cairn.projections.store.moved_topics import topics_of
from cairn.projections.store.session import SqlSession

REBUILD_BATCH = 1000


def _namespace(e: Any) -> str:
    return e.originator_id.removeprefix("index/")


def namespace_expiry(expires: str) -> str:
    """The expiry of the namespaces above an entry: the midnight after the entry's."""
    return iso(next_midnight(parse_time(expires)))


class IndexViews(Projection):
    name = "index"
    tables = ("index_entries", "index_namespaces")

    def register(self) -> None:
        self.on(IndexedTask.Inserted, self.inserted)
        self.on(IndexedTask.Deleted, self.removed)
        self.on(IndexedTask.Expired, self.expired)

    def inserted(self, session: SqlSession, e: Any, _: Any) -> None:
        namespace = _namespace(e)
        session.run(
            "upsert_index_entry",
            {
                "namespace": namespace,
                "parent": split_namespace(namespace)[0],
                "task_id": e.task_id,
                "rank": e.rank,
                "data": orjson.dumps(e.data).decode(),
                "expires": e.expires,
            },
        )
        expires = namespace_expiry(e.expires)
        for above in parent_namespaces(namespace):
            parent, name = split_namespace(above)
            session.run(
                "upsert_index_namespace",
                {"namespace": above, "parent": parent, "name": name, "expires": expires},
            )

    def removed(self, session: SqlSession, e: Any, _: Any) -> None:
        session.run("delete_index_entry", {"namespace": _namespace(e)})

    def expired(self, session: SqlSession, e: Any, _: Any) -> None:
        self.removed(session, e, _)
        session.run("purge_index_namespaces", {"now": iso(e.timestamp)})


def rebuild_index(log: Any, views: IndexViews) -> int:
    """Empty the index views and fold every IndexedTask event into them again.

    One transaction: readers see the old rows until the new ones commit.
    Returns how many events were folded.
    """
    topics = list(topics_of(views.handlers))
    folded = 0
    with log.store.unit_of_work() as session:
        for table in views.tables:
            session.execute_sql(f"DELETE FROM {table}")
        position = 0
        while True:
            notifications = log.recorder.select_notifications(
                start=position, limit=REBUILD_BATCH, topics=topics, inclusive_of_start=False
            )
            if not notifications:
                return folded
            views(session, [log.mapper.to_domain_event(n) for n in notifications])
            folded += len(notifications)
            position = notifications[-1].id


def _entry(row: dict[str, Any]) -> dict[str, Any]:
    rank = float(row["rank"])
    return {
        "namespace": row["namespace"],
        "taskId": row["task_id"],
        "rank": int(rank) if rank.is_integer() else rank,
        "data": orjson.loads(row["data"]),
        "expires": row["expires"],
    }


class IndexReadModel(ReadModel):
    def entry(self, namespace: str, now: str) -> dict[str, Any] | None:
        rows = self._rows("get_index_entry", {"namespace": namespace, "now": now})
        return _entry(rows[0]) if rows else None

    def entries(self, namespaces: list[str], now: str) -> dict[str, dict[str, Any]]:
        if not namespaces:
            return {}
        rows = self._rows(
            "get_index_entries", {"namespaces": orjson.dumps(namespaces).decode(), "now": now}
        )
        return {r["namespace"]: _entry(r) for r in rows}

    def entries_under(self, parent: str, after: str, limit: int, now: str) -> list[dict[str, Any]]:
        rows = self._rows(
            "list_index_entries", {"parent": parent, "after": after, "limit": limit, "now": now}
        )
        return [_entry(r) for r in rows]

    def namespaces_under(self, parent: str, after: str, limit: int, now: str) -> list[dict[str, Any]]:
        rows = self._rows(
            "list_index_namespaces", {"parent": parent, "after": after, "limit": limit, "now": now}
        )
        return [{"namespace": r["namespace"], "name": r["name"], "expires": r["expires"]} for r in rows]

    def expired_entries(self, now: str, limit: int) -> list[str]:
        return [r["namespace"] for r in self._rows("expired_index_entries", {"now": now, "limit": limit})]

    def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        """Every row of both views, to compare with a rebuild."""
        return {
            "index_entries": self._rows("all_index_entries"),
            "index_namespaces": self._rows("all_index_namespaces"),
        }
