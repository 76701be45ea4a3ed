"""The index's application service: insert, delete and expire entries.

Each command loads (or starts) the entry's aggregate, lets it decide, and
saves what it recorded; the index views follow in the same transaction.
A command that changes nothing records nothing, so repeating one is harmless.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cairn.domain.event_log import EventLog
from cairn.domain.index.model import IndexedTask, index_key


class IndexService:
    def __init__(self, log: EventLog):
        self.log = log

    def indexed(self, namespace: str) -> IndexedTask | None:
        return self.log.get(index_key(namespace))

    def insert(
        self,
        namespace: str,
        task_id: str,
        rank: float,
        data: dict[str, Any],
        expires: datetime,
        now: datetime,
        source_position: int | None = None,
    ) -> dict[str, Any] | None:
        """Index a task at ``namespace``; returns the entry that stays indexed there.

        That is the new entry, or the higher-ranked one that kept its place
        (None only when a replayed completion finds the path since emptied).
        """

        def insert() -> dict[str, Any] | None:
            indexed = self.indexed(namespace) or IndexedTask(namespace=namespace)
            if indexed.insert(task_id, rank, data, expires, now, source_position):
                self.log.save(indexed)
            current = indexed.current(now) or indexed.entry
            return {"namespace": namespace, **current} if current is not None else None

        return self.log.command(insert)

    def delete(self, namespace: str) -> bool:
        """Remove the entry at ``namespace``; False if there was none."""

        def delete() -> bool:
            indexed = self.indexed(namespace)
            if indexed is None or not indexed.delete():
                return False
            self.log.save(indexed)
            return True

        return self.log.command(delete)

    def expire(self, namespace: str, now: datetime) -> bool:
        """Record that the entry at ``namespace`` expired; False if it has not."""

        def expire() -> bool:
            indexed = self.indexed(namespace)
            if indexed is None or not indexed.expire(now):
                return False
            self.log.save(indexed)
            return True

        return self.log.command(expire)
