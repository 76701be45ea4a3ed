"""Scratch tables: copies of a projection's tables, made from the live DDL and queries.

A rebuild replays the log into ``tasks__rebuild`` (and so on), a verify into
``tasks__verify``; the swap moves the live tables to ``__old`` on the way
out. Every scratch table is created from the statement that creates its
live table (``*_schema.sql``), its name and its indexes' names given the
suffix, and every named query is rewritten to read and write it: a scratch
table always has the live table's columns, keys and indexes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping

from cairn.projections.store.queries import Query, load_schema
from cairn.projections.store.session import SqlSession

REBUILD_SUFFIX = "__rebuild"
VERIFY_SUFFIX = "__verify"
OLD_SUFFIX = "__old"

_CREATE_TABLE = re.compile(r"^\s*CREATE\s+TABLE\s+IF\s+NOT\s+EXISTS\s+(\w+)", re.I)
_CREATE_INDEX = re.compile(r"^\s*CREATE\s+(?:UNIQUE\s+)?INDEX\s+IF\s+NOT\s+EXISTS\s+(\w+)\s+ON\s+(\w+)", re.I)
_IDENTIFIER = re.compile(r"'(?:[^']|'')*'|(?<![.\w:])(?<!%\()(\w+)")
_ALIAS = re.compile(r"\bAS\s+$", re.I)


def table_ddl(dialect: str, tables: Iterable[str]) -> dict[str, list[str]]:
    """{table: [its CREATE TABLE, then its CREATE INDEX statements]} from ``load_schema``."""
    wanted = set(tables)
    found: dict[str, list[str]] = {t: [] for t in wanted}
    for statement in load_schema(dialect):
        table = _CREATE_TABLE.match(statement)
        if table and table[1] in wanted:
            found[table[1]].insert(0, statement)
        index = _CREATE_INDEX.match(statement)
        if index and index[2] in wanted:
            found[index[2]].append(statement)
    missing = [t for t, ddl in found.items() if not ddl or not _CREATE_TABLE.match(ddl[0])]
    if missing:
        raise ValueError(f"no CREATE TABLE in sql/*_schema.sql for {sorted(missing)}")
    return found


def schema_relations(dialect: str) -> list[str]:
    """The names of every table and index the schema creates."""
    names = []
    for statement in load_schema(dialect):
        found = _CREATE_TABLE.match(statement) or _CREATE_INDEX.match(statement)
        if found:
            names.append(found[1])
    return names


def rename_tables(sql: str, renames: Mapping[str, str]) -> str:
    """``sql`` with every reference to a table in ``renames`` renamed.

    Identifiers are renamed where they can name a table: not inside string
    literals, not as a column after ``.``, not as an alias after ``AS``, and
    not as a placeholder (``:name``, ``%(name)s``).
    """

    def rename(match: re.Match[str]) -> str:
        name = match[1]
        if name is None or name not in renames:
            return match[0]
        if _ALIAS.search(sql, max(0, match.start() - 8), match.start()):
            return match[0]
        return renames[name]

    return _IDENTIFIER.sub(rename, sql)


def scratch_names(dialect: str, tables: Iterable[str], suffix: str) -> dict[str, str]:
    """Live name → scratch name, for the tables and their indexes."""
    renames: dict[str, str] = {}
    for table, ddl in table_ddl(dialect, tables).items():
        renames[table] = table + suffix
        for statement in ddl[1:]:
            renames[index_name(statement)] = index_name(statement) + suffix
    return renames


def scratch_schema(dialect: str, tables: Iterable[str], suffix: str, part: str = "all") -> list[str]:
    """The DDL that creates scratch copies of ``tables``: table and index names + ``suffix``.

    Derived from the live schema (``load_schema``), so a scratch table always
    has the live table's columns, keys and indexes. ``part`` is ``"tables"``
    or ``"indexes"`` for one half: tables filled by COPY get their indexes
    after it, built once rather than row by row.
    """
    tables = list(tables)
    renames = scratch_names(dialect, tables, suffix)
    first, last = {"all": (0, None), "tables": (0, 1), "indexes": (1, None)}[part]
    return [rename_tables(s, renames) for ddl in table_ddl(dialect, tables).values() for s in ddl[first:last]]


def scratch_queries(queries: Mapping[str, Query], renames: Mapping[str, str]) -> dict[str, Query]:
    """Every named query, reading and writing the scratch tables instead of the live ones."""
    return {name: Query(q.name, q.description, rename_tables(q.sql, renames)) for name, q in queries.items()}


class ScratchSession(SqlSession):
    """A session on scratch tables: commit callbacks (wake-ups) are for live views only."""

    eager_log_order = True

    def on_commit(self, callback: Callable[[], None]) -> None:
        pass


def create_scratch(session: SqlSession, tables: Iterable[str], suffix: str, part: str = "all") -> None:
    """Scratch copies of ``tables``, made anew (see ``scratch_schema`` for ``part``)."""
    tables = list(tables)
    drop_scratch(session, tables, suffix)
    for statement in scratch_schema(session.dialect, tables, suffix, part):
        session.execute_sql(statement)


def drop_scratch(session: SqlSession, tables: Iterable[str], suffix: str) -> None:
    """Drop the scratch copies of ``tables``, and any left by a swap that did not finish."""
    cascade = " CASCADE" if session.dialect == "postgres" else ""
    for table in tables:
        session.execute_sql(f"DROP TABLE IF EXISTS {table}{suffix}{cascade}")
        session.execute_sql(f"DROP TABLE IF EXISTS {table}{OLD_SUFFIX}{cascade}")


def index_name(statement: str) -> str:
    """The index a ``CREATE INDEX`` statement of the schema creates."""
    return _CREATE_INDEX.match(statement)[1]  # type: ignore[index]
