"""The base of every read model: named queries run in a reading session."""

from __future__ import annotations

from typing import Any


class ReadModel:
    """Reads views through ``store.reading()``: the current transaction if there is one."""

    def __init__(self, store: Any):
        self.store = store

    def _rows(self, name: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        with self.store.reading() as session:
            return session.rows(name, params)

    def _rows_together(self, *queries: tuple[str, dict[str, Any]]) -> list[list[dict[str, Any]]]:
        """Several queries run in order, sent together where the session can (see ``SqlSession.rows_together``)."""
        with self.store.reading() as session:
            return session.rows_together(queries)

    def _one(self, name: str, params: dict[str, Any] | None = None) -> dict[str, Any] | None:
        rows = self._rows(name, params)
        return rows[0] if rows else None
