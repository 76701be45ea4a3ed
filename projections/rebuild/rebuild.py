"""Rebuilding and verifying views from the log, while Cairn keeps serving.

A rebuild replays the whole log into scratch copies of a projection's tables
(``tasks__rebuild``, ...), made from the same DDL, and then swaps them in.
Write-side views get what the recorder gives them: consecutive events of one
aggregate are one save, passed with the aggregate's state after them, folded
in memory as the replay goes (the log does not record where one save ended
and the next began, so two saves of one aggregate in a row are replayed as
one; handlers fold to the same rows either way). Read-side views get their
events as their log follower does — from the same pass over the log when
they are at the same place. On PostgreSQL the bulk of the log is folded
into an in-memory SQLite copy first and COPYed in
(``projections/rebuild/staging.py``): a handler's statement then costs
microseconds, not a round trip; and a long log is folded in several
processes at once, the projections divided between them
(``projections/rebuild/lanes.py``).

Why the swap loses nothing, with writers still running:

- The scratch tables catch up in committed chunks, again and again, until
  the remaining tail is short; only then does the swap transaction begin.
- On PostgreSQL, that transaction first takes ACCESS EXCLUSIVE locks on the
  live tables being replaced and then ``LOCK TABLE <events> IN EXCLUSIVE
  MODE`` — the lock every writer takes to insert events, held to its commit.
  That is the writers' own order (views, then events). The locks are taken
  under a ``lock_timeout`` shorter than PostgreSQL's deadlock check, so when
  a writer holding one of these tables waits for another the swap holds, it
  is the swap that gives way — it rolls back to a savepoint and tries again —
  and never a writer that fails. Holding both, no transaction can be part way
  through writing these views or the log: every event up to the head is
  committed, and none can follow until the swap commits. The tail is
  applied to the scratch tables, which then equal the fold of the whole
  log; live → ``__old``, scratch → live, each projection's ``swapped_in``
  (which moves the auth epoch past any value it had), old dropped, all in
  one commit.
  Writers waiting on the locks resume on the new tables (PostgreSQL looks
  the names up again after a wait).
- On SQLite the unit of work already holds the one writer lock.
- A read-side view is rebuilt to its follower's position, not the head: the
  swap locks the view and the follower's position row, brings the scratch
  tables to that position, and leaves it as it is — so the follower, which
  commits rows and position together, resumes on rows that match it.

``verify`` replays the same way into ``__verify`` tables and compares them
with the live views in one consistent snapshot (PostgreSQL: a REPEATABLE
READ transaction, whose events and views committed together; SQLite: the
unit of work), blocking nobody on PostgreSQL.
"""

from __future__ import annotations

import gc
import random
import re
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from cairn.projections.projection import Projection
from cairn.projections.rebuild.staging import StagingSession, copy_table, open_staging
from cairn.projections.rebuild.state_folder import StateFolder
from cairn.projections.store.queries import Query, load_queries, load_schema
from cairn.projections.store.session import SqlSession


class SwapTimeout(Exception):
    """Writers kept the live tables busy for longer than the swap would wait."""


REBUILD_SUFFIX = "__rebuild"
VERIFY_SUFFIX = "__verify"
OLD_SUFFIX = "__old"

# --- scratch tables: the live DDL and queries, with table names rewritten

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
            renames[_CREATE_INDEX.match(statement)[1]] = _CREATE_INDEX.match(statement)[1] + suffix  # type: ignore[index]
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


# --- replaying the log into scratch tables


@dataclass
class Target:
    """A projection to rebuild; a read-side one names the consumer whose position it keeps."""

    projection: Projection
    consumer: str | None = None
    position: int = 0

    @property
    def name(self) -> str:
        return self.projection.name

    @property
    def read_side(self) -> bool:
        return self.consumer is not None


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


@dataclass
class Replay:
    """Scratch copies of some projections' tables, kept up with the log."""

    event_log: Any
    targets: Sequence[Target]
    suffix: str = REBUILD_SUFFIX
    progress: Callable[[int], None] = lambda n: None
    read_batch: int = 5000
    chunk: int = 0
    staged: bool = True
    #: Processes to fold a long log in on PostgreSQL: 0 for one per core, 1 for this one only.
    lanes: int = 0
    folder: StateFolder = field(init=False)

    def __post_init__(self) -> None:
        self.store = self.event_log.store
        self.dialect: str = self.store.dialect
        self.tables = [t for target in self.targets for t in target.projection.tables]
        self.renames = scratch_names(self.dialect, self.tables, self.suffix)
        self.queries = scratch_queries(self.store.queries, self.renames)
        self.folder = StateFolder(self.event_log)
        self.writers = [t for t in self.targets if not t.read_side]
        #: How the lanes went, when the log was folded in lanes: their projections, seconds and CPU seconds.
        self.lane_report: list[dict[str, Any]] = []
        #: CPU seconds the last staging spent applying held (``last_write_wins``) writes, by query.
        self.held_seconds: dict[str, float] = {}
        self._writers_for: dict[Any, list[Projection]] = {}
        self.written = 0
        #: How the swap went: attempts to take the locks, and how long writers were held back.
        self.lock_attempts = 0
        self.locked_seconds = 0.0
        # Commit scratch rows in chunks; on SQLite each chunk holds the one
        # writer lock, so keep them short there.
        self.chunk = self.chunk or (20_000 if self.dialect == "postgres" else 2_000)

    # scratch tables

    def create(self, part: str = "all") -> None:
        with self.store.unit_of_work() as session:
            self._drop(session)
            for statement in scratch_schema(self.dialect, self.tables, self.suffix, part):
                session.execute_sql(statement)

    def drop(self) -> None:
        with self.store.unit_of_work() as session:
            self._drop(session)

    def _drop(self, session: SqlSession) -> None:
        cascade = " CASCADE" if self.dialect == "postgres" else ""
        for table in self.tables:
            session.execute_sql(f"DROP TABLE IF EXISTS {table}{self.suffix}{cascade}")
            session.execute_sql(f"DROP TABLE IF EXISTS {table}{OLD_SUFFIX}{cascade}")

    # catching up

    def head(self, session: SqlSession) -> int:
        recorder = self.event_log.recorder
        column = "notification_id" if self.dialect == "postgres" else "rowid"
        session.cursor.execute(f"SELECT max({column}) AS head FROM {recorder.events_table_name}")
        row = session.cursor.fetchall()[0]
        return int(dict(row)["head"] or 0)

    def limits(self, session: SqlSession, lock: bool = False) -> dict[str | None, int]:
        """How far each target must get: the head for write-side views, the follower's position for read-side."""
        limits: dict[str | None, int] = {None: self.head(session)}
        for target in self.targets:
            if target.consumer is not None:
                limits[target.consumer] = self._consumer_position(session, target.consumer, lock)
        return limits

    def _consumer_position(self, session: SqlSession, name: str, lock: bool) -> int:
        if lock and self.dialect == "postgres":
            session.cursor.execute("SELECT position FROM consumer_positions WHERE name = %s FOR UPDATE", (name,))
            rows = session.cursor.fetchall()
            return int(dict(rows[0])["position"]) if rows else 0
        row = session.one("get_consumer_position", {"name": name})
        return int(row["position"]) if row else 0

    def remaining(self, limits: Mapping[str | None, int]) -> int:
        """Events (by position) between the targets and ``limits``."""
        behind = max(0, limits[None] - self.written) if self.writers else 0
        for target in self.targets:
            if target.consumer is not None:
                behind += max(0, limits[target.consumer] - target.position)
        return behind

    def build(self, small_tail: int = 200, rounds: int = 20) -> None:
        """Create the scratch tables and catch them up, in committed chunks, to within ``small_tail``.

        The swap applies what is left while writers wait, so the tail is
        chased down first — for at most ``rounds`` rounds, should writers
        keep ahead.
        """
        staged = self.dialect == "postgres" and self.staged
        self.create("tables" if staged else "all")
        with collector_paused():
            if staged:
                self._build_staged()
            self.catch_up(small_tail, rounds)

    def catch_up(self, small_tail: int = 200, rounds: int = 20) -> None:
        """Catch the scratch tables up in committed chunks, round after round, to within ``small_tail``."""
        for _ in range(rounds):
            with self.store.reading() as session:
                limits = self.limits(session)
            applied = 0
            while self.remaining(limits) > 0:
                with self.store.unit_of_work() as session:
                    applied += self.advance(self.scratch(session), limits, self.chunk)
            if applied <= small_tail:
                return

    def scratch(self, session: SqlSession) -> ScratchSession:
        """``session``'s transaction, running the queries on the scratch tables."""
        return ScratchSession(session.cursor, self.queries, self.dialect)

    def catch_up_in(self, session: SqlSession, limits: Mapping[str | None, int]) -> None:
        """Bring the scratch tables to ``limits`` inside ``session``'s transaction."""
        scratch = self.scratch(session)
        while self.remaining(limits) > 0 and self.advance(scratch, limits, self.chunk):
            pass

    def _build_staged(self) -> None:
        """Fold the bulk of the log in memory and COPY it into PostgreSQL (see ``stage``).

        A long log is folded in lanes, on every core the machine gives this
        process (``projections/rebuild/lanes.py``); a short one here.
        """
        from cairn.projections.rebuild import lanes

        with self.store.reading() as session:
            limits = self.limits(session)
        plan = lanes.plan(self, limits) if self.lanes != 1 else []
        staged = lanes.run(self, plan, limits) if len(plan) > 1 else self.stage(limits)
        if not staged:
            self._restart_unstaged()

    def stage(self, limits: Mapping[str | None, int], copy: bool = True) -> bool:
        """Fold up to ``limits`` in an in-memory SQLite copy, then COPY it into PostgreSQL.

        Each statement a handler runs then costs microseconds instead of a
        round trip to the server (see ``projections/rebuild/staging.py``). The
        SQLite variants of the named queries make the same rows (the suite
        checks both back ends), and ``verify`` compares the result with the
        live views. A handler that reads a table outside the rebuild has
        nothing to read in memory: then nothing is copied, and False says
        the replay must start again without staging.
        """
        schema = scratch_schema("sqlite", self.tables, self.suffix)
        staging, deferred_indexes = open_staging(schema)
        try:
            renames = scratch_names("sqlite", self.tables, self.suffix)
            last_write_wins = {
                name: key for t in self.writers for name, key in getattr(t.projection, "last_write_wins", {}).items()
            }
            short_lived = {
                name: pair for t in self.writers for name, pair in getattr(t.projection, "short_lived", {}).items()
            }
            scratch = StagingSession(
                staging.cursor(),
                scratch_queries(load_queries("sqlite"), renames),
                [renames[t] for t in self.tables],
                last_write_wins,
                deferred_indexes,
                schema,
                lambda aggregate_id, version: self.event_log.repository.get(aggregate_id, version=version),
                short_lived,
            )
            staging.execute("BEGIN")
            try:
                while self.remaining(limits) > 0 and self.advance(scratch, limits, 1 << 62):
                    pass
                scratch.flush()
            except sqlite3.OperationalError as e:
                if "no such table" not in str(e):
                    raise
                return False
            finally:
                self.held_seconds = scratch.held_seconds
            staging.execute("COMMIT")
            if copy:
                with self.store.unit_of_work() as session:
                    for table in self.tables:
                        _copy_into(staging, session, table + self.suffix)
                    for statement in scratch_schema(self.dialect, self.tables, self.suffix, "indexes"):
                        session.execute_sql(statement)
            return True
        finally:
            staging.close()

    def _restart_unstaged(self) -> None:
        self.staged = False
        self.folder = StateFolder(self.event_log)
        self.written = 0
        for target in self.targets:
            target.position = 0
        self.create()

    def advance(self, scratch: SqlSession, limits: Mapping[str | None, int], budget: int) -> int:
        """Apply up to about ``budget`` events towards ``limits``; returns how many were applied.

        Read-side views at the same position as the write-side ones take
        their events from the same pass over the log, as far as their limit.
        """
        applied = 0
        if self.writers and self.written < limits[None]:
            riders = [t for t in self.targets if t.read_side and t.position == self.written]
            for batch in self._pages(self.written, limits[None]):
                self._write(scratch, batch)
                for target in riders:
                    self._follow(scratch, target, batch, limits[target.consumer])
                self.written = batch[-1][0]
                applied += len(batch)
                self.progress(len(batch))
                if applied >= budget:
                    break
            else:
                self.written = limits[None]
        for target in self.writers:
            target.position = self.written
        for target in self.targets:
            limit = limits.get(target.consumer, 0)
            if not target.read_side or applied >= budget or target.position >= limit:
                continue
            for batch in self._pages(target.position, limit, target.projection):
                self._follow(scratch, target, batch, limit)
                applied += len(batch)
                if applied >= budget:
                    break
            else:
                self.progress(limit - target.position)
                target.position = limit
        return applied

    def _follow(self, scratch: SqlSession, target: Target, batch: list[tuple[int, Any]], limit: int) -> None:
        """Fold into a read-side view the events of ``batch`` it has not had, up to ``limit``."""
        if target.position >= limit:
            return
        handles = target.projection.handles
        if target.position < batch[0][0] and batch[-1][0] <= limit:
            events = [event for _, event in batch if handles(event)]
        else:
            events = [event for position, event in batch if target.position < position <= limit and handles(event)]
        if events:
            target.projection(scratch, events)
            scratch.placed_in_log()
        reached = min(batch[-1][0], limit)
        self.progress(reached - target.position)
        target.position = reached

    def _pages(self, after: int, stop: int, followed: Projection | None = None) -> Iterator[list[tuple[int, Any]]]:
        """Batches of events in ``(after, stop]``; the next is read while one is decoded and folded.

        The reading thread only waits for rows: decoding them there too would
        make the two threads take turns at the interpreter lock, which costs
        more than it overlaps.
        """
        pages = self._stream(after, stop, list(getattr(followed, "topics", ())) if followed is not None else [])
        decode = self.event_log.decode_events
        with ThreadPoolExecutor(1, thread_name_prefix="cairn-replay-read") as reader:
            coming = reader.submit(next, pages, None)
            try:
                while (page := coming.result()) is not None:
                    coming = reader.submit(next, pages, None)
                    positions, rows = page
                    yield list(zip(positions, decode(rows)))
            finally:
                coming.cancel() or coming.exception()
                reader.submit(pages.close).result()

    def _stream(self, after: int, stop: int, topics: list[str]) -> Iterator[tuple[list[int], list[Any]]]:
        """Pages of positions and stored ``(originator_id, originator_version, topic, state)`` rows in
        ``(after, stop]``, in log order, of the ``topics`` given (else all).

        On PostgreSQL one query runs through the range with a server-side
        cursor, in binary; the rows are decoded in bulk (``EventLog.decode_events``).
        """
        recorder = self.event_log.recorder
        if self.dialect != "postgres":
            while after < stop:
                notifications = recorder.select_notifications(
                    start=after, limit=self.read_batch, stop=stop, topics=topics, inclusive_of_start=False
                )
                if not notifications:
                    return
                rows = [(n.originator_id, n.originator_version, n.topic, n.state) for n in notifications]
                yield [n.id for n in notifications], rows
                after = notifications[-1].id
            return
        import psycopg.rows

        sql = (
            "SELECT notification_id, originator_id, originator_version, topic, state "
            f"FROM {recorder.events_table_name} WHERE notification_id > %s AND notification_id <= %s"
        )
        params: list[Any] = [after, stop]
        if topics:
            sql += " AND topic = ANY(%s)"
            params.append(topics)
        with recorder.datastore.get_connection() as conn, conn.transaction():
            # Folding a page may take a while; the cursor's transaction waits, idle, meanwhile.
            conn.execute("SET LOCAL idle_in_transaction_session_timeout = 0")
            with conn.cursor("cairn_replay", row_factory=psycopg.rows.tuple_row) as cursor:
                cursor.execute(sql + " ORDER BY notification_id", params, binary=True)
                while rows := cursor.fetchmany(self.read_batch):
                    yield [r[0] for r in rows], [r[1:] for r in rows]

    def _write(self, scratch: SqlSession, batch: list[tuple[int, Any]]) -> None:
        """Fold events and give write-side projections each run of one aggregate's events as one save."""
        save: list[Any] = []
        saving = None
        state: Any = None
        fold, end_save = self.folder.fold, self._save
        for _, event in batch:
            if event.originator_id != saving:
                if save:
                    end_save(scratch, save, state)
                save, saving = [], event.originator_id
            state = fold(event)
            save.append(event)
        if save:
            end_save(scratch, save, state)

    def _save(self, scratch: SqlSession, events: list[Any], state: Any) -> None:
        aggregates = {events[0].originator_id: state}
        kinds = type(events[0]) if len(events) == 1 else frozenset(type(e) for e in events)
        writers = self._writers_for.get(kinds)
        if writers is None:
            writers = self._writers_for[kinds] = self._writers_of(kinds)
        for projection in writers:
            projection(scratch, events, aggregates)
        # As the recorder does once a save's events are in the log.
        scratch.placed_in_log()

    def _writers_of(self, kinds: Any) -> list[Projection]:
        """The write-side projections a save of events of these classes can change.

        One that folds with the base class's dispatch and has no handler for
        any of them would do nothing; one with its own ``__call__`` is given
        every save.
        """
        kinds = {kinds} if isinstance(kinds, type) else kinds
        return [
            t.projection
            for t in self.writers
            if type(getattr(t.projection, "__wrapped__", t.projection)).__call__ is not Projection.__call__
            or any(k in t.projection.handlers for k in kinds)
        ]

    # the end: swap or compare

    def swap(self, patience: float = 60.0) -> None:
        """Replace the live tables with the scratch tables, caught up to the last event.

        When the locks cannot be had at once, the attempt is dropped (nothing
        was applied in it), the scratch tables catch up with what writers
        added meanwhile, and the swap tries again — for ``patience`` seconds.
        """
        give_up = time.monotonic() + patience
        self.lock_attempts = 0
        while True:
            self.lock_attempts += 1
            with self.store.unit_of_work() as session:
                locked = self.dialect != "postgres" or self._lock_live(session)
                if locked:
                    started = time.monotonic()
                    limits = self.limits(session, lock=True)
                    self.catch_up_in(session, limits)
                    for target in self.targets:
                        if target.consumer is not None and target.position > limits[target.consumer]:
                            session.run("set_consumer_position", {"name": target.consumer, "position": target.position})
                    self._rename(session)
            if locked:
                self.locked_seconds = time.monotonic() - started
                return
            if time.monotonic() > give_up:
                raise SwapTimeout(
                    f"writers kept {', '.join(self.tables)} busy for {patience:.0f} s "
                    f"({self.lock_attempts} attempts to lock them); nothing was swapped"
                )
            self.catch_up(rounds=1)
            time.sleep(random.uniform(0.005, 0.05))

    def compare(self) -> list[Difference]:
        """Catch up and compare scratch and live tables in one consistent snapshot."""
        differences: list[Difference] = []
        with self.store.unit_of_work() as session:
            if self.dialect == "postgres":
                session.execute_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                # Comparing a big table's rows here takes a while, the transaction idle meanwhile.
                session.execute_sql("SET LOCAL idle_in_transaction_session_timeout = 0")
            self.catch_up_in(session, self.limits(session))
            for target in self.targets:
                for table in target.projection.tables:
                    differences += compare_table(session, target.projection, table, self.renames[table])
            self._drop(session)
        return differences

    def _lock_live(self, session: SqlSession) -> bool:
        """Lock the live tables, then the log; False if that would have meant waiting too long.

        Each lock is waited for at most ``deadlock_timeout / (tables + 3)``, so
        the swap gives up well before a writer waiting on it would run its
        deadlock check; it then rolls back to its savepoint, dropping every
        lock it took.
        """
        import psycopg

        session.cursor.execute("SELECT setting::int AS ms FROM pg_settings WHERE name = 'deadlock_timeout'")
        deadlock_ms = int(dict(session.cursor.fetchall()[0])["ms"])
        timeout_ms = max(10, deadlock_ms // (len(self.tables) + 3))
        session.execute_sql("SAVEPOINT cairn_swap_locks")
        try:
            session.execute_sql(f"SET LOCAL lock_timeout = '{timeout_ms}ms'")
            session.execute_sql(f"LOCK TABLE {', '.join(self.tables)} IN ACCESS EXCLUSIVE MODE")
            if self.writers:
                session.execute_sql(f"LOCK TABLE {self.event_log.recorder.events_table_name} IN EXCLUSIVE MODE")
            session.execute_sql("SET LOCAL lock_timeout = 0")
        except psycopg.errors.LockNotAvailable:
            session.execute_sql("ROLLBACK TO SAVEPOINT cairn_swap_locks")
            return False
        session.execute_sql("RELEASE SAVEPOINT cairn_swap_locks")
        return True

    def _rename(self, session: SqlSession) -> None:
        for table in self.tables:
            session.execute_sql(f"ALTER TABLE {table} RENAME TO {table}{OLD_SUFFIX}")
            session.execute_sql(f"ALTER TABLE {table}{self.suffix} RENAME TO {table}")
        replaced = ScratchSession(
            session.cursor,
            scratch_queries(self.store.queries, scratch_names(self.dialect, self.tables, OLD_SUFFIX)),
            self.dialect,
        )
        for target in self.targets:
            target.projection.swapped_in(session, replaced)
        for table in self.tables:
            session.execute_sql(f"DROP TABLE {table}{OLD_SUFFIX}")
        if self.dialect == "postgres":
            # Implicit names (keys, sequences) came with the scratch suffix: take the live ones back.
            for table in self.tables:
                for name, kind in _owned_relations(session, table):
                    if self.suffix in name:
                        session.execute_sql(f"ALTER {kind} {name} RENAME TO {name.replace(self.suffix, '')}")
        else:
            # SQLite cannot rename an index: build the live ones again.
            ddl = table_ddl(self.dialect, self.tables)
            for table in self.tables:
                for statement in ddl[table][1:]:
                    index = _CREATE_INDEX.match(statement)[1]  # type: ignore[index]
                    session.execute_sql(f"DROP INDEX IF EXISTS {index}{self.suffix}")
                    session.execute_sql(statement)


def _copy_into(staging: sqlite3.Connection, session: SqlSession, table: str) -> None:
    """Every row of ``table`` from the staging database into PostgreSQL's; serial columns go on from there."""
    copy_table(staging, session.cursor, table)
    session.cursor.execute(
        "SELECT column_name AS name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = %s AND column_default LIKE 'nextval%%'",
        (table,),
    )
    for (name,) in [tuple(dict(r).values()) for r in session.cursor.fetchall()]:
        session.cursor.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', '{name}'), coalesce(max({name}), 0) + 1, false) FROM {table}"
        )


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cycle collector off for a replay, which makes millions of objects and keeps many.

    Each full collection walks every live object — the folded aggregates
    included — and would take a third of the replay's time. The replay's
    objects are freed by their reference counts; the collector catches up
    afterwards.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _owned_relations(session: SqlSession, table: str) -> list[tuple[str, str]]:
    session.cursor.execute(
        """
        SELECT i.relname AS name, 'INDEX' AS kind FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
        WHERE x.indrelid = %(table)s::regclass
        UNION ALL
        SELECT s.relname, 'SEQUENCE' FROM pg_depend d JOIN pg_class s ON s.oid = d.objid
        WHERE d.refobjid = %(table)s::regclass AND s.relkind = 'S' AND d.deptype IN ('a', 'i')
        """,
        {"table": table},
    )
    return [(dict(r)["name"], dict(r)["kind"]) for r in session.cursor.fetchall()]


# --- comparing a live table with its rebuilt copy

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
        at = _bisect(tails, r)
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


def _bisect(tails: list[int], value: int) -> int:
    low, high = 0, len(tails)
    while low < high:
        middle = (low + high) // 2
        if tails[middle] < value:
            low = middle + 1
        else:
            high = middle
    return low
