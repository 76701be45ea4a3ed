"""The latest rows of a held upsert, kept for the COPY instead of written to the staging database.

A rebuild holds a ``last_write_wins`` query's writes by row key and
applies only the latest of each (``staging.py``); applied, they go into
the in-memory SQLite copy of their table, to be read out again by the COPY
into PostgreSQL. While no other statement touches that table, nothing
but the COPY ever reads them: they can wait for it as values, which
saves writing each row into SQLite (its key index too) and reading it
back — a task row is a kilobyte and more of JSON. Once any other
statement is about to touch the table, the rows waiting are written there
first and the query is applied as before.

Only a plain upsert qualifies: ``INSERT INTO t (every column) VALUES
(:one placeholder each) ON CONFLICT (the key's columns) DO UPDATE SET c =
excluded.c, ...``. Its latest write of a key then makes the row, as the
projection declares (the columns it leaves as inserted never change).
Values go to the COPY as SQLite would have given them back: a value
SQLite would convert for its column's type (a number for a text column,
say) sends every row through SQLite as before. Booleans, which SQLite
keeps as 0 and 1, go as they are: the COPY writes both alike.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

_UPSERT = re.compile(
    r"\s*INSERT\s+INTO\s+(\w+)\s*\(([\w\s,]+)\)\s*VALUES\s*\(([:\w\s,]+)\)"
    r"\s*ON\s+CONFLICT\s*\(([\w\s,]+)\)\s*DO\s+UPDATE\s+SET\s+([\w\s,.=]+?)\s*;?\s*",
    re.I,
)
_SET_EXCLUDED = re.compile(r"(\w+)\s*=\s*excluded\.(\w+)", re.I)
_NONE = type(None)


def _names(listed: str) -> list[str]:
    return [name.strip() for name in listed.split(",")]


def _affinity(declared: str) -> str:
    """SQLite's type affinity for a column of the ``declared`` type (its documentation, section 3.1)."""
    declared = declared.upper()
    if "INT" in declared:
        return "INTEGER"
    if any(word in declared for word in ("CHAR", "CLOB", "TEXT")):
        return "TEXT"
    if "BLOB" in declared or not declared:
        return "BLOB"
    if any(word in declared for word in ("REAL", "FLOA", "DOUB")):
        return "REAL"
    return "NUMERIC"


#: The types of value SQLite stores as they are, by affinity (``bool`` as the 0 or 1 it is equal to).
_STORED_AS_GIVEN = {
    "TEXT": {str, _NONE},
    "INTEGER": {int, bool, _NONE},
    "NUMERIC": {int, bool, _NONE},
    "REAL": {float, _NONE},
    "BLOB": {bytes, _NONE},
}


class RowsForCopy:
    """A held upsert's latest rows by key, in the order of its ``columns``."""

    def __init__(self, table: str, columns: list[str], affinities: list[str]):
        self.table = table
        self.columns = columns
        self.affinities = affinities
        self.rows: dict[tuple[Any, ...], tuple[Any, ...]] = {}

    @classmethod
    def of(cls, sql: str, key: Sequence[str], cursor: Any) -> RowsForCopy | None:
        """For a held query's ``sql`` (placeholders named) and row ``key``, if it qualifies (module docstring)."""
        upsert = _UPSERT.fullmatch(sql)
        if upsert is None:
            return None
        table, columns, values = upsert[1], _names(upsert[2]), _names(upsert[3])
        if len(values) != len(columns) or not all(v.startswith(":") for v in values):
            return None
        params = [v[1:] for v in values]
        if len(set(params)) != len(params) or not set(key) <= set(params):
            return None
        if set(_names(upsert[4])) != {columns[params.index(k)] for k in key}:
            return None
        updates = _names(upsert[5])
        if not all((m := _SET_EXCLUDED.fullmatch(u)) and m[1] == m[2] for u in updates):
            return None
        cursor.execute(f"PRAGMA table_info({table})")
        declared = {row[1]: row[2] for row in cursor.fetchall()}
        if set(declared) != set(columns):
            return None
        return cls(table, columns, [_affinity(declared[c]) for c in columns])

    def as_stored(self) -> list[tuple[Any, ...]] | None:
        """The rows, if SQLite would give each value back as it is (or, a boolean, as its 0 or 1); else None."""
        rows = list(self.rows.values())
        for values, affinity in zip(zip(*rows), self.affinities):
            if not set(map(type, values)) <= _STORED_AS_GIVEN[affinity]:
                return None
        return rows
