"""Replaying the log into scratch tables, kept up with it while Cairn keeps serving.

A rebuild replays the whole log into scratch copies of a projection's tables
(``tasks__rebuild``, ...; ``projections/rebuild/scratch.py``) and then swaps
them in (``swap.py``); a verify replays into ``__verify`` copies and compares
(``verify.py``). Write-side views get what the recorder gives them:
consecutive events of one aggregate are one save, passed with the
aggregate's state after them, folded in memory as the replay goes
(``state_folder.py``; the log does not record where one save ended and the
next began, so two saves of one aggregate in a row are replayed as one;
handlers fold to the same rows either way). Read-side views get their
events as their log follower does — from the same pass over the log when
they are at the same place. On PostgreSQL the bulk of the log is folded
into an in-memory SQLite copy first and COPYed in (``staging.py``): a
handler's statement then costs microseconds, not a round trip; and a long
log is folded in several processes at once, the projections divided
between them (``lanes.py``).
"""

from __future__ import annotations

import gc
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from cairn.projections.projection import Projection
from cairn.projections.rebuild import log_pages
from cairn.projections.rebuild.scratch import (
    REBUILD_SUFFIX,
    ScratchSession,
    create_scratch,
    drop_scratch,
    scratch_names,
    scratch_queries,
    scratch_schema,
)
from cairn.projections.rebuild.staging import StagingSession, copy_into, open_staging
from cairn.projections.rebuild.state_folder import StateFolder
from cairn.projections.rebuild.swap import swap_in
from cairn.projections.rebuild.verify import Difference, compare
from cairn.projections.store.moved_topics import topics_of
from cairn.projections.store.queries import load_queries
from cairn.projections.store.session import SqlSession

#: Events after the last whose aggregate a writer read, past which a replay that folds
#: only for such reads stops folding (``Replay._write_folding_when_read``).
FOLD_LINGER = 50_000


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
        #: Whether every save's aggregate is folded: if a writer may read the aggregate of any
        #: event; otherwise only while one reads them (``_write``), for these event classes.
        self.fold_always = any(t.projection.aggregates_read_by is None for t in self.writers)
        self._aggregate_readers: dict[type, list[Projection]] = {}
        for target in self.writers:
            for kind in target.projection.aggregates_read_by or ():
                self._aggregate_readers.setdefault(kind, []).append(target.projection)
        self.folding = self.fold_always
        #: The position of the last event whose aggregate a writer read, when not folding always.
        self._read_aggregate_at = 0
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
            create_scratch(session, self.tables, self.suffix, part)

    def drop(self) -> None:
        with self.store.unit_of_work() as session:
            drop_scratch(session, self.tables, self.suffix)

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
        """Catch the scratch tables up in committed chunks, round after round, to within ``small_tail``.

        A round that applied no fewer events than the one before means the
        writers add events faster than they are applied here: chasing them
        would only lengthen every round, so the chase stops, and the swap
        applies the rest while writers wait.
        """
        before: int | None = None
        for _ in range(rounds):
            with self.store.reading() as session:
                limits = self.limits(session)
            applied = 0
            while self.remaining(limits) > 0:
                with self.store.unit_of_work() as session:
                    applied += self.advance(self.scratch(session), limits, self.chunk)
            if applied <= small_tail or (before is not None and applied >= before):
                return
            before = applied

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
                scratch.finish()
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
                        copy_into(staging, session, table + self.suffix, scratch.rows_for_copy(table + self.suffix))
                    for statement in scratch_schema(self.dialect, self.tables, self.suffix, "indexes"):
                        session.execute_sql(statement)
            return True
        finally:
            staging.close()

    def _restart_unstaged(self) -> None:
        self.staged = False
        self.folder = StateFolder(self.event_log)
        self.folding, self._read_aggregate_at = self.fold_always, 0
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
            while self.written < limits[None] and applied < budget:
                folding = self.folding
                for batch in self._pages(self.written, limits[None], topics=self._pass_topics(riders)):
                    self._write(scratch, batch)
                    for target in riders:
                        self._follow(scratch, target, batch, limits[target.consumer])
                    self.progress(batch[-1][0] - self.written)
                    self.written = batch[-1][0]
                    applied += len(batch)
                    if applied >= budget or self.folding != folding:
                        break  # enough for now; or the events to read have changed
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

    def _pages(
        self, after: int, stop: int, followed: Projection | None = None, topics: Sequence[str] = ()
    ) -> Iterator[list[tuple[int, Any]]]:
        """Batches of ``(position, event)`` in ``(after, stop]``: all, those ``followed`` reads, or of ``topics``."""
        if followed is not None:
            topics = list(getattr(followed, "topics", ()))
        return log_pages.pages(self.event_log, after, stop, topics, self.read_batch)

    def _pass_topics(self, riders: Sequence[Target]) -> list[str]:
        """The topics the pass of the write-side views reads: every one while it folds aggregates
        (the fold needs every event); else only those its projections have handlers for.

        A projection that folds in its own way (its own ``__call__``) may want every event.
        """
        if self.folding or any(type(t.projection).__call__ is not Projection.__call__ for t in self.targets):
            return []
        return sorted({topic for t in [*self.writers, *riders] for topic in topics_of(t.projection.handlers)})

    def _write(self, scratch: SqlSession, batch: list[tuple[int, Any]]) -> None:
        """Fold events and give write-side projections each run of one aggregate's events as one save."""
        if not self.fold_always:
            self._write_folding_when_read(scratch, batch)
            return
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

    def _write_folding_when_read(self, scratch: SqlSession, batch: list[tuple[int, Any]]) -> None:
        """``_write`` for writers that read aggregates of a few events only: folding only while they do.

        No aggregate is folded until an event's handler reads it (say a
        claim recorded before its event carried the task queue). From then
        on every event is folded, as when folding always — the aggregates
        folded before that point are loaded from the log as they are met —
        until ``FOLD_LINGER`` events have gone by with none read: an old
        log is folded as it always was, and the events recorded since are
        not.
        """
        if self.folding and batch[0][0] - self._read_aggregate_at > FOLD_LINGER:
            self.folding = False
            self.folder = StateFolder(self.event_log)  # what it holds would be stale when next read
        readers = self._aggregate_readers
        save: list[Any] = []
        saving = None
        state: Any = None
        for position, event in batch:
            if event.originator_id != saving:
                if save:
                    self._save(scratch, save, state)
                save, saving, state = [], event.originator_id, None
            kind = type(event)
            if kind in readers and any(p.reads_aggregate(event) for p in readers[kind]):
                self.folding, self._read_aggregate_at = True, position
            if self.folding:
                state = self.folder.fold(event)
            save.append(event)
        if save:
            self._save(scratch, save, state)

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
        """Replace the live tables with the scratch tables, caught up to the last event (``swap.py``)."""
        swap_in(self, patience)

    def compare(self) -> list[Difference]:
        """Catch up and compare scratch and live tables in one consistent snapshot (``verify.py``)."""
        return compare(self)


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
