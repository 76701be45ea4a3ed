"""Named SQL queries, loaded once from every ``*_queries.sql`` and ``*_schema.sql``
beside the projections of a bounded context (``projections/queue/queue_queries.sql``,
``projections/auth/auth_schema.sql``, ...); names are global and must not repeat.

A query is written once with ``:name`` placeholders; a block may be
specialised for one back end with ``-- name: x (postgres)`` or ``(sqlite)``.
psycopg gets ``%(name)s`` placeholders, sqlite3 keeps ``:name``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

DIALECTS = ("postgres", "sqlite")
_HEADER = re.compile(r"^--\s*name:\s*(?P<name>\w+)(?:\s*\((?P<dialect>\w+)\))?\s*$")
_PLACEHOLDER = re.compile(r"(?<![:\w]):(\w+)")


@dataclass(frozen=True)
class Query:
    name: str
    description: str
    sql: str


def _parse(text: str, dialect: str) -> dict[str, Query]:
    queries: dict[str, Query] = {}
    specific: set[str] = set()
    blocks: list[tuple[str, str | None, list[str], list[str]]] = []
    for line in text.splitlines():
        header = _HEADER.match(line)
        if header:
            blocks.append((header["name"], header["dialect"], [], []))
        elif blocks:
            _, _, doc, body = blocks[-1]
            if line.startswith("--") and not body:
                doc.append(line.lstrip("- ").strip())
            elif line.strip() and not line.lstrip().startswith("--"):
                body.append(line)
    for name, block_dialect, doc, body in blocks:
        if block_dialect not in (None, dialect):
            continue
        if block_dialect is None and name in specific:
            continue
        if block_dialect is not None:
            specific.add(name)
        sql = "\n".join(body).strip().rstrip(";")
        if dialect == "postgres":
            sql = _PLACEHOLDER.sub(r"%(\1)s", sql.replace("%", "%%"))
        queries[name] = Query(name, " ".join(doc), sql)
    return queries


def _load(suffix: str, dialect: str) -> dict[str, Query]:
    if dialect not in DIALECTS:
        raise ValueError(f"unknown SQL dialect {dialect!r}")
    found: dict[str, Query] = {}
    for entry in _sql_files():
        if entry.name.endswith(suffix):
            parsed = _parse(entry.read_text(), dialect)
            clash = found.keys() & parsed.keys()
            if clash:
                raise ValueError(f"query names defined twice: {sorted(clash)}")
            found.update(parsed)
    return found


def _sql_files() -> list:
    """Every ``.sql`` file in the projections package's context folders, by name."""
    top = resources.files("cairn.projections")
    found = []
    for folder in top.iterdir():
        if folder.is_dir() and not folder.name.startswith(("_", ".")):
            found.extend(entry for entry in folder.iterdir() if entry.name.endswith(".sql"))
    return sorted(found, key=lambda e: e.name)


def load_queries(dialect: str) -> dict[str, Query]:
    return _load("_queries.sql", dialect)


def load_schema(dialect: str) -> list[str]:
    """The DDL statements that create every view table, idempotently."""
    return [q.sql for q in _load("_schema.sql", dialect).values()]
