"""Verifying views: the live tables against a fold of the whole log.

``verify`` replays the log the way a rebuild does, into ``__verify`` tables
(``Replay``), and compares them with the live views in one consistent
snapshot (PostgreSQL: a REPEATABLE READ transaction, whose events and views
committed together; SQLite: the unit of work), blocking nobody on
PostgreSQL. Rows are compared as multisets of their values; a difference
names the row by its key and says which columns differ.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cairn.projections.projection import Projection
from cairn.projections.rebuild.scratch import drop_scratch, table_ddl
from cairn.projections.store.session import SqlSession

if TYPE_CHECKING:
    from cairn.projections.rebuild.replay import Replay


@dataclass(frozen=True)
class Difference:
    projection: str
    table: str
    key: dict[str, Any] | None
    live: dict[str, Any] | None
    rebuilt: dict[str, Any] | None
    #: Set when the row is the same but the ordinal column puts it out of order.
    order: str | None = None

    def describe(self) -> str:
        where = ", ".join(f"{k}={v!r}" for k, v in self.key.items()) if self.key else ""
        head = f"{self.projection}: {self.table}" + (f" [{where}]" if where else "")
        if self.order is not None:
            shown = self.live if self.key is None else {self.order: (self.live or {}).get(self.order)}
            return f"{head}: out of the order the log gives, by {self.order} ({shown})"
        if self.live is None:
            return f"{head}: missing from the view; the log gives {self.rebuilt}"
        if self.rebuilt is None:
            return f"{head}: in the view but not in the log: {self.live}"
        changed = [
            f"{c} is {self.live[c]!r} in the view, {self.rebuilt[c]!r} from the log"
            for c in self.live
            if self.live[c] != self.rebuilt.get(c)
        ]
        return f"{head}: " + "; ".join(changed)


def compare(replay: Replay) -> list[Difference]:
    """Catch ``replay``'s scratch tables up and compare them with the live ones in one consistent snapshot."""
    differences: list[Difference] = []
    with replay.store.unit_of_work() as session:
        if replay.dialect == "postgres":
            session.execute_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            # Comparing a big table's rows here takes a while, the transaction idle meanwhile.
            session.execute_sql("SET LOCAL idle_in_transaction_session_timeout = 0")
        replay.catch_up_in(session, replay.limits(session))
        for target in replay.targets:
            for table in target.projection.tables:
                differences += compare_table(session, target.projection, table, replay.renames[table])
        drop_scratch(session, replay.tables, replay.suffix)
    return differences


_PRIMARY_KEY = re.compile(r"PRIMARY\s+KEY\s*\(([^)]*)\)", re.I)
_INLINE_KEY = re.compile(r"^\s*(\w+)\s+\w+[^,\n]*?\bPRIMARY\s+KEY", re.I | re.M)
_UNIQUE = re.compile(r"UNIQUE\s*\(([^)]*)\)", re.I)


def row_key(dialect: str, projection: Projection, table: str) -> tuple[str, ...]:
    """The columns that name a row: declared, else the first key of the DDL that is compared by value."""
    if table in projection.row_keys:
        return projection.row_keys[table]
    create = table_ddl(dialect, [table])[table][0]
    skip = set(projection.ordinal_columns.get(table, ())) | set(projection.ignored_columns.get(table, ()))
    candidates = [(m[1],) for m in _INLINE_KEY.finditer(create)]
    candidates += [tuple(c.strip() for c in m[1].split(",")) for m in _PRIMARY_KEY.finditer(create)]
    candidates += [tuple(c.strip() for c in m[1].split(",")) for m in _UNIQUE.finditer(create)]
    for key in candidates:
        if not skip & set(key):
            return key
    return ()


def _rows(session: SqlSession, table: str, ignored: Sequence[str]) -> list[dict[str, Any]]:
    session.cursor.execute(f"SELECT * FROM {table}")
    rows = [dict(r) for r in session.cursor.fetchall()]
    for row in rows:
        for column in ignored:
            row.pop(column, None)
    return rows


def compare_table(session: SqlSession, projection: Projection, table: str, scratch: str) -> list[Difference]:
    """Rows that differ between a live table and its rebuilt copy.

    Rows are compared as multisets of their values, without the ignored and
    ordinal columns; then, for each ordinal column, the rows present on both
    sides are compared by the order it gives them.
    """
    ordinal = projection.ordinal_columns.get(table, ())
    live = _rows(session, table, projection.ignored_columns.get(table, ()))
    rebuilt = _rows(session, scratch, projection.ignored_columns.get(table, ()))
    sample = live[0] if live else rebuilt[0] if rebuilt else {}
    if not sample:
        return []  # nothing to compare: no rows, or every column ignored
    columns = sorted(c for c in sample if c not in ordinal)
    key_columns = row_key(session.dialect, projection, table)

    def values(row: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(row[c] for c in columns)

    def name(row: dict[str, Any]) -> dict[str, Any] | None:
        return {c: row[c] for c in key_columns} if key_columns else None

    live_counts, rebuilt_counts = Counter(map(values, live)), Counter(map(values, rebuilt))
    in_view = {values(r): r for r in live if live_counts[values(r)] > rebuilt_counts[values(r)]}
    from_log = {values(r): r for r in rebuilt if rebuilt_counts[values(r)] > live_counts[values(r)]}
    by_key = {tuple((name(r) or {}).values()) or v: r for v, r in from_log.items()}
    differences = []
    for v, row in in_view.items():
        key = tuple((name(row) or {}).values()) or v
        differences.append(Difference(projection.name, table, name(row), row, by_key.pop(key, None)))
    differences += [Difference(projection.name, table, name(r), None, r) for r in by_key.values()]
    for column in ordinal:
        differences += [
            Difference(projection.name, table, name(r), r, None, order=column)
            for r in _out_of_order(live, rebuilt, column, values)
        ]
    return differences


def _out_of_order(
    live: list[dict[str, Any]], rebuilt: list[dict[str, Any]], column: str, values: Callable[[dict[str, Any]], Any]
) -> list[dict[str, Any]]:
    """Live rows that ``column`` puts out of the order the rebuild gives: the fewest to move."""
    rank = {values(r): i for i, r in enumerate(sorted(rebuilt, key=lambda r: r[column]))}
    in_order = [r for r in sorted(live, key=lambda r: r[column]) if values(r) in rank]
    ranks = [rank[values(r)] for r in in_order]
    # The longest run of live rows already in the rebuilt order stays; the rest moved.
    tails: list[int] = []
    ends: list[int] = []
    previous = [-1] * len(ranks)
    for i, r in enumerate(ranks):
        at = bisect_left(tails, r)
        previous[i] = ends[at - 1] if at else -1
        if at == len(tails):
            tails.append(r)
            ends.append(i)
        else:
            tails[at], ends[at] = r, i
    keep, i = set(), ends[-1] if ends else -1
    while i >= 0:
        keep.add(i)
        i = previous[i]
    return [row for i, row in enumerate(in_order) if i not in keep]
