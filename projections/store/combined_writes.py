"""A command's view writes sent as few statements as their order allows (PostgreSQL).

A command's flight carries a dozen small view writes (a row inserted here,
one deleted there). psycopg sends each statement of a pipeline on its own,
polling the socket for each, and that was the largest single entry in the
server's profile under load. Consecutive
writes are therefore joined into one statement of data-modifying CTEs:

    WITH w0 AS (INSERT INTO claims ...), w1 AS (DELETE FROM pending ...)
    UPDATE runs SET ...

PostgreSQL runs every part of such a statement on one snapshot, so no part
sees what another changed. A write joins the statement being built only if
it names none of the tables the statement writes already (that covers two
writes of one table, and a write that reads a table another one changed);
otherwise the statement is sent and a new one begun. A write that reads a
table only *later* parts change sees the table as it was before them, as it
would have, sent first. Only INSERT, UPDATE and DELETE are joined; a plain
SELECT ends a statement as its main query, under the same rule, and one
that names no table at all (``pg_notify``, which takes effect at COMMIT
wherever it stands) ends the last one. Anything else goes alone, in its
place.

Each sequence of query names makes one statement text, built once, which
psycopg prepares once it is used often.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cairn.projections.store.queries import Query

_PARAM = re.compile(r"%\((\w+)\)s")
_WRITE = re.compile(r"^\s*(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+\"?(\w+)", re.IGNORECASE)
_SELECT = re.compile(r"^\s*SELECT\b", re.IGNORECASE)
_TABLE = re.compile(r"\b(?:FROM|JOIN|INTO|UPDATE)\s+\"?(\w+)", re.IGNORECASE)

Held = tuple[Query, Mapping[str, Any]]


@dataclass(frozen=True)
class _Shape:
    writes: str | None  # the table written; None: not a write that can be joined
    select: bool  # a plain SELECT, which can end a statement of joined writes
    names: frozenset[str]  # every table it names
    params: tuple[str, ...]


class CombinedWrites:
    """Sends held writes on a cursor, joined as ``combined_writes`` says."""

    def __init__(self) -> None:
        self._shapes: dict[str, _Shape] = {}
        self._statements: dict[tuple[str, ...], str] = {}

    def send(self, cursor: Any, held: Sequence[Held]) -> int:
        """Send ``held`` in order, as few statements as allowed; returns how many were sent."""
        sent = 0
        group: list[Held] = []
        written: set[str] = set()
        floating: list[Held] = []
        for query, params in held:
            shape = self._shape(query)
            if shape.select and not shape.names:
                # reads no table (pg_notify, sent at COMMIT anyway): it ends the last statement
                floating.append((query, params))
                continue
            if shape.names & written:
                sent += self._execute(cursor, group)
                group, written = [], set()
            if shape.writes is None:
                if shape.select:
                    # a SELECT (pg_notify) ends the statement as its main query
                    sent += self._execute(cursor, [*group, (query, params)])
                else:
                    sent += self._execute(cursor, group)
                    cursor.execute(query.sql, params)
                    sent += 1
                group, written = [], set()
                continue
            group.append((query, params))
            written.add(shape.writes)
        if group and floating:
            group.append(floating.pop(0))
        sent += self._execute(cursor, group)
        for query, params in floating:
            cursor.execute(query.sql, params)
        return sent + len(floating)

    def _execute(self, cursor: Any, group: list[Held]) -> int:
        if not group:
            return 0
        if len(group) == 1:
            query, params = group[0]
            cursor.execute(query.sql, params)
            return 1
        key = tuple(query.name for query, _ in group)
        statement = self._statements.get(key)
        if statement is None:
            statement = self._statements[key] = self._join([query for query, _ in group])
        merged: dict[str, Any] = {}
        for i, (query, params) in enumerate(group):
            for name in self._shape(query).params:
                # item access, not iteration: a row's parameters may be worked
                # out when first read (``TaskRow``)
                merged[f"w{i}_{name}"] = params[name]
        cursor.execute(statement, merged)
        return 1

    def _join(self, queries: list[Query]) -> str:
        parts = [_PARAM.sub(lambda m, i=i: f"%(w{i}_{m[1]})s", query.sql) for i, query in enumerate(queries)]
        ctes = ", ".join(f"w{i} AS ({part})" for i, part in enumerate(parts[:-1]))
        return f"WITH {ctes} {parts[-1]}"

    def _shape(self, query: Query) -> _Shape:
        shape = self._shapes.get(query.name)
        if shape is None:
            written = _WRITE.match(query.sql)
            shape = self._shapes[query.name] = _Shape(
                writes=written[1].lower() if written else None,
                select=_SELECT.match(query.sql) is not None,
                names=frozenset(t.lower() for t in _TABLE.findall(query.sql)),
                params=tuple(dict.fromkeys(_PARAM.findall(query.sql))),
            )
        return shape
