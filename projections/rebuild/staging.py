"""Folding a rebuild in memory first: an SQLite copy of the scratch tables, then COPY.

A rebuild on PostgreSQL replays the bulk of the log into an in-memory
SQLite database holding copies of the scratch tables (same DDL, SQLite
dialect) and then COPYs the rows into PostgreSQL: a handler's statement
costs microseconds instead of a round trip. Nothing but the replay uses
that database, which lets :class:`StagingSession` skip work whose result
nobody can observe:

- an index is built only once a statement the replay runs would search
  with it (SQLite's plan for the statement, asked of an empty copy of the
  full schema): the indexes the API reads by are built in PostgreSQL,
  after the COPY, and need not be kept up to date row by row here;
- reads are remembered until a statement writes one of the tables they
  read (the worker views read a queue's row for every task defined on it);
- a query a projection declares ``last_write_wins`` (the task row, written
  from the aggregate after every save) is held per row key, and only the
  latest run for each key is applied — before any other statement touches
  its table, and at the end. Rows then pass through the states they would
  have, as far as any statement can see. Parameters with a ``settle(load)``
  method are worked out only then (``queue_views.TaskRow``), from the
  aggregate they came from or, if it has changed since, from
  ``load(aggregate id, version)``. While no other statement touches its
  table, the rows applied wait for the COPY outside SQLite
  (``rows_for_copy.py``);
- an insert a projection declares ``short_lived`` (a pending run, a claim)
  is held the same way, per row key, and a run of its paired delete with
  that key drops it instead: a row made and removed again before any other
  statement touched its table is never made. The insert must be the only
  statement that adds rows to its table, and the delete must remove just
  the rows whose key columns equal its parameters;
- a statement that names no table (``SELECT 1``, PostgreSQL's wake-ups) is
  not run at all, and nor is a ``DELETE`` or ``UPDATE`` of a table no
  statement that could add a row to has run on yet (the scratch tables
  start empty): the dependency waits of a log without dependencies;
- the statements it runs itself bind their values by position (``?1``, in
  the order of the query's ``:name`` placeholders), which SQLite does
  faster than by name;
- ``AUTOINCREMENT`` keys are plain ``INTEGER PRIMARY KEY``s, which cost no
  counter table: a new row still numbers after every row there is, so the
  order they give (all a rebuild keeps of them) is the same.

Remembered reads and held writes rely on each statement naming every table
it touches; a schema with triggers or foreign keys turns both off.
"""

from __future__ import annotations

import itertools
import operator
import re
import sqlite3
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

from cairn.projections.rebuild.rows_for_copy import RowsForCopy
from cairn.projections.store.queries import Query
from cairn.projections.store.session import Cursor, SqlSession

#: Rows a remembered read or a held write may keep before they are let go.
HELD_ROWS = 20_000
#: Rows copied into a table from which its keys are built after the COPY (``copy_table``).
KEYS_AFTER_ROWS = 10_000
#: Bytes per page of the staging database (SQLite's default is 4096).
PAGE_SIZE = 16_384

_NAME = re.compile(r"'(?:[^']|'')*'|(\w+)")
_INDEX = re.compile(r"^\s*CREATE\s+(UNIQUE\s+)?INDEX\s+IF\s+NOT\s+EXISTS\s+(\w+)", re.I)
_PLANNED_INDEX = re.compile(r"USING (?:COVERING )?INDEX (\w+)")
_AUTOINCREMENT = re.compile(r"\bAUTOINCREMENT\b", re.I)
_HIDDEN_WRITES = re.compile(r"\bCREATE\s+TRIGGER\b|\bREFERENCES\b", re.I)
_NO_TABLE = re.compile(r"\s*SELECT\b(?![\s\S]*\bFROM\b)[\s\S]*", re.I)
_READ = re.compile(r"\s*SELECT\b", re.I)
_CHANGE = re.compile(r"\s*(?:DELETE\s+FROM|UPDATE)\s+(\w+)", re.I)
_PLACEHOLDER = re.compile(r"'(?:[^']|'')*'|--[^\n]*|(?<![:\w]):(\w+)")


def open_staging(schema: Iterable[str]) -> tuple[sqlite3.Connection, dict[str, str]]:
    """An in-memory database with ``schema``'s tables and unique indexes; and the other indexes' DDL, by name.

    It is thrown away after the rebuild, so it keeps no journal.
    """
    staging = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False, cached_statements=1024)
    staging.row_factory = sqlite3.Row
    staging.execute("PRAGMA journal_mode = OFF")
    # Fewer, larger pages: shallower B-trees for keys such as random task ids.
    staging.execute(f"PRAGMA page_size = {PAGE_SIZE}")
    deferred = {}
    for statement in schema:
        index = _INDEX.match(statement)
        if index and not index[1]:
            deferred[index[2]] = statement
        else:
            staging.execute(_AUTOINCREMENT.sub("", statement))
    return staging, deferred


def tables_used(queries: Mapping[str, Query], tables: Iterable[str]) -> dict[str, frozenset[str]]:
    """{query name: the tables among ``tables`` its SQL names}."""
    wanted = set(tables)
    return {
        name: frozenset(m[1] for m in _NAME.finditer(q.sql) if m[1] in wanted) for name, q in queries.items()
    }


def positional(sql: str) -> tuple[str, Callable[[Mapping[str, Any]], tuple[Any, ...]]]:
    """``sql`` with its ``:name`` placeholders numbered (``?1``, ...), and what takes their values, in that order, from named parameters."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match[1] is None:
            return match[0]
        if match[1] not in names:
            names.append(match[1])
        return f"?{names.index(match[1]) + 1}"

    numbered = _PLACEHOLDER.sub(number, sql)
    if not names:
        return numbered, lambda params: ()
    if len(names) == 1:
        only = names[0]
        return numbered, lambda params: (params[only],)
    return numbered, operator.itemgetter(*names)


def _key_getter(columns: Sequence[str]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """What takes the values of ``columns`` from named parameters, as a tuple."""
    if len(columns) == 1:
        only = columns[0]
        return lambda params: (params[only],)
    return operator.itemgetter(*columns)  # type: ignore[return-value]


@dataclass(frozen=True, slots=True)
class _Statement:
    """What the session needs to know about one named query, worked out at its first run."""

    sql: str
    tables: frozenset[str]
    #: The held (``last_write_wins``) queries to apply before this one runs.
    flush_first: tuple[str, ...]
    #: For a held query, the columns that name its row.
    key: tuple[str, ...] | None
    inert: bool
    #: For the delete of a ``short_lived`` insert, that insert.
    cancels: str | None = None
    #: For a ``DELETE`` or ``UPDATE``, the table whose rows it changes (and nothing else).
    changes: str | None = None

    @property
    def plain(self) -> bool:
        """Run as it is: not held, not skipped, nothing to apply first."""
        return self.key is None and not self.inert and not self.flush_first and self.cancels is None


class StagingSession(SqlSession):
    """A session on the staging database, for the replay alone (see the module docstring)."""

    eager_log_order = True

    def __init__(
        self,
        cursor: Cursor,
        queries: Mapping[str, Query],
        tables: Iterable[str],
        last_write_wins: Mapping[str, Sequence[str]],
        deferred_indexes: Mapping[str, str],
        schema: Iterable[str],
        load: Callable[[str, int], Any] | None = None,
        short_lived: Mapping[str, tuple[str, Sequence[str]]] | None = None,
    ):
        super().__init__(cursor, queries, "sqlite")
        schema = list(schema)
        self.uses = tables_used(queries, tables)
        # A trigger or a foreign key action writes tables its statement does not
        # name: with one in the schema, every statement runs as it comes.
        self.literal = any(_HIDDEN_WRITES.search(statement) for statement in schema)
        self.held_keys = {} if self.literal else {name: tuple(key) for name, key in last_write_wins.items()}
        #: short-lived insert → its delete; it is held like a last-write-wins query, by its key.
        self.short_lived = {} if self.literal else {insert: delete for insert, (delete, _) in (short_lived or {}).items()}
        self.held_keys.update({insert: tuple(key) for insert, (_, key) in (short_lived or {}).items() if not self.literal})
        #: For each short-lived insert, the keys of the rows it has applied that its delete has not run for since.
        self.applied_keys: dict[str, set[tuple[Any, ...]]] = {insert: set() for insert in self.short_lived}
        self.held: dict[str, dict[tuple[Any, ...], Mapping[str, Any]]] = {name: {} for name in self.held_keys}
        #: For each held query, what takes the key of its row from its parameters.
        self.key_of = {name: _key_getter(key) for name, key in self.held_keys.items()}
        #: Held queries whose latest rows wait for the COPY while nothing else touches their table
        #: (``rows_for_copy.py``); and, once the replay is done, those rows by table.
        self.for_copy: dict[str, RowsForCopy] = {}
        for name, key in last_write_wins.items():
            if name in self.held_keys and (waiting := RowsForCopy.of(queries[name].sql, key, cursor)) is not None:
                self.for_copy[name] = waiting
        for name, waiting in list(self.for_copy.items()):  # one held query's rows to a table, or none
            if any(waiting.table in self.uses[other] for other in self.held_keys if other != name):
                del self.for_copy[name]
        self.copied: dict[str, tuple[list[str], Iterable[tuple[Any, ...]]]] = {}
        self.deferred_indexes = dict(deferred_indexes)
        self.load = load
        #: CPU seconds spent applying each held query's writes (which a lane plan charges to its projection).
        self.held_seconds: dict[str, float] = {name: 0.0 for name in self.held_keys}
        self.statements: dict[str, _Statement] = {}
        #: Statements that do nothing (yet), and what they return: -1 for one naming no table,
        #: 0 for a change to a table that has no rows (until a statement that may add some runs).
        self.idle: dict[str, int] = {}
        #: The tables a statement that could add rows to has run on (all of them, with triggers).
        self.filled: set[str] = set(tables) if self.literal else set()
        #: name → (SQL with numbered placeholders, what takes the values, tables) of the statements that are simply run.
        self.plain: dict[str, tuple[str, Callable[[Mapping[str, Any]], tuple[Any, ...]], frozenset[str]]] = {}
        #: name → the SQL with numbered placeholders and what takes the values, for ``executemany``.
        self.numbered: dict[str, tuple[str, Callable[[Mapping[str, Any]], tuple[Any, ...]]]] = {}
        #: query name → {params: rows}, and table → the names of the remembered reads of it.
        self.remembered: dict[str, dict[tuple[Any, ...], list[dict[str, Any]]]] = defaultdict(dict)
        self.readers: dict[str, set[str]] = defaultdict(set)
        self.planner = sqlite3.connect(":memory:")
        for statement in schema:
            self.planner.execute(statement)

    def on_commit(self, callback: Any) -> None:
        pass

    def run(self, name: str, params: Mapping[str, Any] | None = None) -> int:
        plain = self.plain.get(name)
        if plain is not None:  # the common case, kept short: most statements run once per event
            sql, values, tables = plain
            if self.readers:
                for table in tables:
                    if table in self.readers:
                        self._forget_reads_of(table)
            self.cursor.execute(sql, values(params or {}))
            return self.cursor.rowcount  # type: ignore[attr-defined,no-any-return]
        idle = self.idle.get(name)
        if idle is not None:
            return idle
        statement = self.statements.get(name) or self._learn(name, params)
        if statement.changes is not None and statement.changes not in self.filled:
            self.idle[name] = 0
            return 0  # an empty table
        key_of = self.key_of.get(name)
        if key_of is not None:  # a held query
            held = self.held[name]
            key = key_of(params)
            if key in held and name in self.short_lived:  # a second row by one key: apply the first
                self._apply_held(name)
                held = self.held[name]
            held[key] = params
            if len(held) >= HELD_ROWS:
                self._apply_held(name, seen=False)
            return 1
        if statement.inert:
            self.idle[name] = -1
            return -1
        if statement.plain:
            if name not in self.plain:
                self.plain[name] = (*self._numbered(name), statement.tables)
            return self.run(name, params)
        if statement.cancels is not None:
            insert = statement.cancels
            key = self.key_of[insert](params)
            applied = self.applied_keys[insert]
            if self.held[insert].pop(key, None) is not None and key not in applied:
                return 1
            applied.discard(key)
        self._before_write(statement)
        return super().run(name, params)

    def rows(self, name: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        if self.literal:
            return super().rows(name, params)
        statement = self.statements.get(name) or self._learn(name, params)
        for held in statement.flush_first:
            if self.held[held] or held in self.for_copy:
                self._apply_held(held)
        try:
            key = tuple(params.items()) if params else ()
            found = self.remembered[name].get(key)
        except TypeError:  # an unhashable parameter: not remembered
            return super().rows(name, params)
        if found is None:
            found = super().rows(name, params)
            remembered = self.remembered[name]
            if len(remembered) >= HELD_ROWS:
                remembered.clear()
            remembered[key] = found
            for table in statement.tables:
                self.readers[table].add(name)
        return [row.copy() for row in found]

    def execute_sql(self, sql: str) -> None:
        self.flush()
        self.remembered.clear()
        self.filled.update(t for uses in self.uses.values() for t in uses)
        self._filled_more()
        super().execute_sql(sql)

    def flush(self) -> None:
        """Apply every held write."""
        for name in self.held:
            self._apply_held(name)

    def finish(self) -> None:
        """Apply every held write, as at the end of a replay: rows that wait for the COPY wait on,
        unless SQLite would have stored any of their values otherwise (then they are applied too)."""
        for name in self.held:
            self._apply_held(name, seen=False)
        for name, waiting in list(self.for_copy.items()):
            rows = waiting.as_stored()
            if rows is None:
                self._apply_held(name)
            else:
                self.copied[waiting.table] = (waiting.columns, rows)

    def rows_for_copy(self, table: str) -> tuple[list[str], Iterable[tuple[Any, ...]]] | None:
        """The columns and rows of ``table`` that waited for the COPY (once ``finish`` has run), if they did."""
        return self.copied.get(table)

    def _before_write(self, statement: _Statement) -> None:
        for held in statement.flush_first:
            if self.held[held] or held in self.for_copy:
                self._apply_held(held)
        for table in statement.tables:
            if table in self.readers:
                self._forget_reads_of(table)

    def _learn(self, name: str, params: Any) -> _Statement:
        """Build the indexes the statement's plan searches by; note the tables it touches."""
        sql = self.queries[name].sql
        if self.deferred_indexes:
            plan = self.planner.execute(f"EXPLAIN QUERY PLAN {sql}", params or {}).fetchall()
            for index in {m[1] for row in plan for m in _PLANNED_INDEX.finditer(row[3])}:
                if index in self.deferred_indexes:
                    self.cursor.execute(self.deferred_indexes.pop(index))
        tables = self.uses[name]
        cancels = next((insert for insert, delete in self.short_lived.items() if delete == name), None)
        flush_first = tuple(
            held for held in self.held_keys if held not in (name, cancels) and self.uses[held] & tables
        )
        inert = not tables and _NO_TABLE.fullmatch(sql) is not None
        change = _CHANGE.match(sql)
        changes = change[1] if change and change[1] in tables else None
        if changes is None and not _READ.match(sql):
            if not tables <= self.filled:
                self.filled |= tables  # it may add rows
                self._filled_more()
        statement = _Statement(sql, tables, flush_first, self.held_keys.get(name), inert, cancels, changes)
        self.statements[name] = statement
        if statement.plain and (changes is None or changes in self.filled):
            self.plain[name] = (*self._numbered(name), tables)
        return statement

    def _filled_more(self) -> None:
        """A table may have rows now: statements that changed none must run again."""
        self.idle = {name: result for name, result in self.idle.items() if result != 0}

    def _numbered(self, name: str) -> tuple[str, Callable[[Mapping[str, Any]], tuple[Any, ...]]]:
        numbered = self.numbered.get(name)
        if numbered is None:
            numbered = self.numbered[name] = positional(self.queries[name].sql)
        return numbered

    def placed_in_log(self, cursor: Cursor | None = None) -> None:
        if self.in_log_order:  # run here, as they come: called after every event of the replay
            queued, self.in_log_order = self.in_log_order, []
            run = self.run
            for name, params in queued:
                run(name, params)

    def _apply_held(self, name: str, seen: bool = True) -> None:
        """Apply a held query's writes. Those of one whose rows wait for the COPY join them, unless
        the table is about to be ``seen`` (touched by another statement): then they all go into it."""
        held, self.held[name] = self.held[name], {}
        waiting = self.for_copy.get(name)
        if not held and (waiting is None or not seen):
            return
        params = list(held.values())
        if name in self.applied_keys:
            self.applied_keys[name].update(held)
        started = time.thread_time()
        for p in params:
            settle = getattr(p, "settle", None)
            if settle is not None:
                settle(self.load)
        sql, values = self._numbered(name)
        if waiting is None:
            self.cursor.executemany(sql, map(values, params))  # type: ignore[attr-defined]
        else:
            waiting.rows.update(zip(held, map(values, params)))
            if seen:  # from now on applied as they come
                del self.for_copy[name]
                self.cursor.executemany(sql, waiting.rows.values())  # type: ignore[attr-defined]
        if waiting is None or seen:
            for table in self.uses[name]:
                self._forget_reads_of(table)
        self.held_seconds[name] += time.thread_time() - started

    def _forget_reads_of(self, table: str) -> None:
        readers = self.readers.pop(table, ())
        for reader in readers:
            self.remembered[reader].clear()


def copy_table(
    staging: sqlite3.Connection,
    cursor: Any,
    table: str,
    waiting: tuple[list[str], Iterable[tuple[Any, ...]]] | None = None,
) -> int:
    """Every row of ``table`` from the staging database — or the ``waiting`` columns and rows instead
    (``StagingSession.rows_for_copy``) — into PostgreSQL's, by binary COPY; returns how many.

    Values go as the PostgreSQL table's column types (booleans are SQLite's
    0 and 1, which the boolean type takes as false and true). From
    ``KEYS_AFTER_ROWS`` rows on, the table's primary key and unique
    constraints are dropped for the COPY and added again after it
    (``_keys_built_after``).
    """
    cursor.execute(f"SELECT * FROM {table} LIMIT 0")
    types = {column.name: column.type_code for column in cursor.description}
    if waiting is None:
        stored = staging.cursor()
        stored.row_factory = None
        stored.execute(f"SELECT * FROM {table}")
        columns = [d[0] for d in stored.description]
        rows: Iterable[Sequence[Any]] = itertools.chain.from_iterable(iter(lambda: stored.fetchmany(5000), []))
    else:
        columns, rows = waiting
    rows = iter(rows)
    first = list(itertools.islice(rows, KEYS_AFTER_ROWS))
    copied = 0
    with _keys_built_after(cursor, table) if len(first) == KEYS_AFTER_ROWS else nullcontext():
        with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types([types[c] for c in columns])
            for copied, row in enumerate(itertools.chain(first, rows), 1):
                copy.write_row(row)
    return copied


@contextmanager
def _keys_built_after(cursor: Any, table: str) -> Iterator[None]:
    """``table``'s primary key and unique constraints dropped, then added again under the same names.

    Building a key's index once from all the rows is cheaper than inserting
    every row into it: a task table of 233,000 rows took PostgreSQL 1.96 s
    to fill with its key and 1.29 s filled first, the key added after. A
    key another table's foreign key depends on stays.
    """
    cursor.execute(
        "SELECT conname AS name, pg_get_constraintdef(c.oid) AS definition FROM pg_constraint c "
        "WHERE c.conrelid = %s::regclass AND c.contype IN ('p', 'u') "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint f WHERE f.contype = 'f' AND f.confrelid = c.conrelid) "
        "ORDER BY c.oid",
        (table,),
    )
    keys = [(dict(row)["name"], dict(row)["definition"]) for row in cursor.fetchall()]
    for name, _ in keys:
        cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    yield
    for name, definition in keys:
        cursor.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')


def copy_into(
    staging: sqlite3.Connection,
    session: SqlSession,
    table: str,
    waiting: tuple[list[str], Iterable[tuple[Any, ...]]] | None = None,
) -> None:
    """Every row of ``table`` from the staging database (or ``waiting``, as ``copy_table`` takes it) into
    PostgreSQL's; serial columns go on from there."""
    copy_table(staging, session.cursor, table, waiting)
    session.cursor.execute(
        "SELECT column_name AS name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = %s AND column_default LIKE 'nextval%%'",
        (table,),
    )
    for (name,) in [tuple(dict(r).values()) for r in session.cursor.fetchall()]:
        session.cursor.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', '{name}'), coalesce(max({name}), 0) + 1, false) FROM {table}"
        )
