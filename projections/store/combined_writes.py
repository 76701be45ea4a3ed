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

A write may join a statement that wrote its table already in one case: a
plain ``INSERT ... VALUES`` (no ``ON CONFLICT``, no other table) adds its
row whatever the earlier parts changed, as it would sent after them.

A save ends with its events (``send_logged``): the last statement of view
writes becomes the head of the events' insert, which takes the log's lock
once every one of those writes is done (their row locks are taken before
the log's, as when they went first), and the writes deferred to log order
(``SqlSession.run_in_log_order``) join its tail, each made to wait for the
lock. A save is then one statement, where nothing stands in the way.

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
_INSERT_VALUES = re.compile(r"^\s*INSERT\s+INTO\s+\w+\s*\([^()]*\)\s*VALUES\s*\(", re.IGNORECASE)
_CONFLICT = re.compile(r"\bON\s+CONFLICT\b", re.IGNORECASE)
_WHERE = re.compile(r"\bWHERE\b", re.IGNORECASE)
_RETURNING = re.compile(r"\bRETURNING\b", re.IGNORECASE)

Held = tuple[Query, Mapping[str, Any]]


@dataclass(frozen=True)
class _Shape:
    writes: str | None  # the table written; None: not a write that can be joined
    select: bool  # a plain SELECT, which can end a statement of joined writes
    names: frozenset[str]  # every table it names
    params: tuple[str, ...]
    #: a plain INSERT ... VALUES of one table: it may follow other writes of that table
    appends: bool
    #: the write made to wait for a ``log_lock`` CTE (None: it cannot be)
    after_lock: str | None
    #: whether `` RETURNING 1`` can be added (it returns nothing yet, and ends in no comment)
    can_return: bool


@dataclass(frozen=True)
class LoggedInsert:
    """The events' insert, as the main query of a save's last statement (``send_logged``).

    ``insert`` is a CTE named ``inserted`` that joins its rows to a CTE
    ``log_lock`` (the log's lock, which ``lock`` selects); ``main`` selects
    from it, and may end with ``order``. Its parameters are named, none
    beginning with ``w``, ``l`` or ``n`` followed by a digit.
    """

    key: Any
    lock: str
    insert: str
    main: str
    order: str
    params: Mapping[str, Any]


class CombinedWrites:
    """Sends held writes on a cursor, joined as ``combined_writes`` says."""

    def __init__(self) -> None:
        self._shapes: dict[str, _Shape] = {}
        self._statements: dict[tuple[str, ...], str] = {}

    def send(self, cursor: Any, held: Sequence[Held]) -> int:
        """Send ``held`` in order, as few statements as allowed; returns how many were sent."""
        sent, group, floating = self._send_all_but_last(cursor, held)
        if group and floating:
            group.append(floating.pop(0))
        sent += self._execute(cursor, group)
        for query, params in floating:
            cursor.execute(query.sql, params)
        return sent + len(floating)

    def send_logged(
        self, cursor: Any, held: Sequence[Held], insert: LoggedInsert, in_log_order: Sequence[Held]
    ) -> tuple[int, list[Held]]:
        """Send ``held``, then ``insert`` and what is deferred to log order, joined where
        allowed; returns how many statements were sent, and the writes deferred to
        log order that could not join (to be sent after, on another cursor)."""
        sent, head, floating = self._send_all_but_last(cursor, held)
        if not all(self._shape(query).can_return for query, _ in head):
            sent += self._execute(cursor, head)  # the lock cannot wait for them: they go first, on their own
            head = []
        written = {self._shape(query).writes for query, _ in head}
        tail: list[Held] = []
        rest = list(in_log_order)
        while rest:
            shape = self._shape(rest[0][0])
            if shape.after_lock is None or not self._joins(shape, written):
                break
            tail.append(rest.pop(0))
            written.add(shape.writes)
        key = (tuple(q.name for q, _ in head), insert.key, tuple(q.name for q, _ in tail),
               tuple(q.name for q, _ in floating))
        statement = self._statements.get(key)
        if statement is None:
            statement = self._statements[key] = self._join_logged(head, insert, tail, floating)
        merged: dict[str, Any] = dict(insert.params)
        for prefix, parts in (("w", head), ("l", tail), ("n", floating)):
            for i, (query, params) in enumerate(parts):
                for name in self._shape(query).params:
                    merged[f"{prefix}{i}_{name}"] = params[name]
        cursor.execute(statement, merged)
        return sent + 1, rest

    def _send_all_but_last(self, cursor: Any, held: Sequence[Held]) -> tuple[int, list[Held], list[Held]]:
        """Send the statements ``held`` makes but the last; returns how many were sent,
        the writes of the last, and the table-less SELECTs (``pg_notify``) that float to the end."""
        sent = 0
        group: list[Held] = []
        written: set[str | None] = set()
        floating: list[Held] = []
        for query, params in held:
            shape = self._shape(query)
            if shape.select and not shape.names:
                # reads no table (pg_notify, sent at COMMIT anyway): it ends the last statement
                floating.append((query, params))
                continue
            if not self._joins(shape, written):
                sent += self._execute(cursor, group)
                group, written = [], set()
            if shape.writes is None:
                if shape.select:
                    # a SELECT ends the statement as its main query
                    sent += self._execute(cursor, [*group, (query, params)])
                else:
                    sent += self._execute(cursor, group)
                    cursor.execute(query.sql, params)
                    sent += 1
                group, written = [], set()
                continue
            group.append((query, params))
            written.add(shape.writes)
        return sent, group, floating

    @staticmethod
    def _joins(shape: _Shape, written: set[str | None]) -> bool:
        """Whether a part of this shape may join a statement that writes ``written``."""
        if shape.appends:
            return True
        return not shape.names & written

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
        parts = [_named(query.sql, f"w{i}_") for i, query in enumerate(queries)]
        ctes = ", ".join(f"w{i} AS ({part})" for i, part in enumerate(parts[:-1]))
        return f"WITH {ctes} {parts[-1]}"

    def _join_logged(self, head: list[Held], insert: LoggedInsert, tail: list[Held], floating: list[Held]) -> str:
        ctes = [f"w{i} AS ({_named(query.sql, f'w{i}_')} RETURNING 1)" for i, (query, _) in enumerate(head)]
        # The lock waits for every write before it: each is read to its end.
        done = ", ".join(f"(SELECT count(*) FROM w{i}) AS c{i}" for i in range(len(head)))
        ctes.append(f"log_lock AS MATERIALIZED ({insert.lock}{' FROM ' + done if done else ''})")
        ctes.append(insert.insert)
        for i, (query, _) in enumerate(tail):
            after_lock = self._shape(query).after_lock
            assert after_lock is not None
            ctes.append(f"l{i} AS ({_named(after_lock, f'l{i}_')})")
        notifies = "".join(
            f", ({_named(query.sql, f'n{i}_')}) AS n{i}" for i, (query, _) in enumerate(floating)
        )
        return f"WITH {', '.join(ctes)} {insert.main}{notifies} {insert.order}".rstrip()

    def _shape(self, query: Query) -> _Shape:
        shape = self._shapes.get(query.name)
        if shape is None:
            written = _WRITE.match(query.sql)
            # RETURNING 1 cannot be added to a write that returns rows already
            # or ends in a comment; nor can such a write be made to wait for the lock.
            can_return = not _RETURNING.search(query.sql) and "--" not in query.sql
            shape = self._shapes[query.name] = _Shape(
                writes=written[1].lower() if written else None,
                select=_SELECT.match(query.sql) is not None,
                names=frozenset(t.lower() for t in _TABLE.findall(query.sql)),
                params=tuple(dict.fromkeys(_PARAM.findall(query.sql))),
                appends=_appends(query.sql),
                after_lock=_after_lock(query.sql) if can_return else None,
                can_return=can_return,
            )
        return shape


def _named(sql: str, prefix: str) -> str:
    """``sql`` with each parameter's name prefixed."""
    return _PARAM.sub(lambda m: f"%({prefix}{m[1]})s", sql)


def _closing(sql: str, start: int) -> int | None:
    """The index of the parenthesis closing the one just before ``start``."""
    depth = 1
    for i in range(start, len(sql)):
        if sql[i] == "(":
            depth += 1
        elif sql[i] == ")":
            depth -= 1
            if depth == 0:
                return i
    return None


def _appends(sql: str) -> bool:
    """A plain INSERT of one row of values into one table, whatever else that table holds."""
    found = _INSERT_VALUES.match(sql)
    if found is None or _CONFLICT.search(sql):
        return False
    end = _closing(sql, found.end())
    return end is not None and not sql[end + 1:].strip() and len(set(_TABLE.findall(sql))) == 1


def _after_lock(sql: str) -> str | None:
    """The write made to wait for the ``log_lock`` CTE: an INSERT takes its row
    from it, an UPDATE or DELETE checks it first; None for any other shape."""
    found = _INSERT_VALUES.match(sql)
    if found is not None:
        end = _closing(sql, found.end())
        if end is None or sql[end + 1:].lstrip().startswith(","):
            return None  # more than one row of values
        head = sql[:found.end() - 1].rstrip()
        assert head.upper().endswith("VALUES")
        return f"{head[:-len('VALUES')]}SELECT {sql[found.end():end]} FROM log_lock{sql[end + 1:]}"
    if not _WRITE.match(sql) or sql.lstrip()[:6].upper() == "INSERT":
        return None
    depth = 0
    for i, char in enumerate(sql):
        depth += (char == "(") - (char == ")")
        if depth == 0 and (where := _WHERE.match(sql, i)) and (i == 0 or not sql[i - 1].isalnum()):
            condition = sql[where.end():]
            return f"{sql[:where.end()]} ({condition.strip()}) AND EXISTS (SELECT FROM log_lock)"
    return None
