"""Swapping rebuilt tables in for the live ones, while writers keep writing.

Why the swap loses nothing, with writers still running:

- The scratch tables catch up in committed chunks, again and again, until
  the remaining tail is short; only then does the swap transaction begin.
- On PostgreSQL, that transaction first takes ACCESS EXCLUSIVE locks on the
  live tables being replaced and then the log's advisory lock — the lock
  every writer takes to insert events, held to its commit. That is the
  writers' own order (views, then events). The locks are taken
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

"""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING

from cairn.projections.rebuild.scratch import (
    OLD_SUFFIX,
    ScratchSession,
    index_name,
    scratch_names,
    scratch_queries,
    table_ddl,
)
from cairn.projections.store.session import SqlSession

if TYPE_CHECKING:
    from cairn.projections.rebuild.replay import Replay


class SwapTimeout(Exception):
    """Writers kept the live tables busy for longer than the swap would wait."""


def swap_in(replay: Replay, patience: float = 60.0) -> None:
    """Replace the live tables with the scratch tables, caught up to the last event.

    When the locks cannot be had at once, the attempt is dropped (nothing
    was applied in it), the scratch tables catch up with what writers
    added meanwhile, and the swap tries again — for ``patience`` seconds.
    """
    give_up = time.monotonic() + patience
    replay.lock_attempts = 0
    while True:
        replay.lock_attempts += 1
        with replay.store.unit_of_work() as session:
            locked = replay.dialect != "postgres" or _lock_live(replay, session)
            if locked:
                started = time.monotonic()
                limits = replay.limits(session, lock=True)
                replay.catch_up_in(session, limits)
                for target in replay.targets:
                    if target.consumer is not None and target.position > limits[target.consumer]:
                        session.run("set_consumer_position", {"name": target.consumer, "position": target.position})
                _rename(replay, session)
        if locked:
            replay.locked_seconds = time.monotonic() - started
            return
        if time.monotonic() > give_up:
            raise SwapTimeout(
                f"writers kept {', '.join(replay.tables)} busy for {patience:.0f} s "
                f"({replay.lock_attempts} attempts to lock them); nothing was swapped"
            )
        replay.catch_up(rounds=1)
        time.sleep(random.uniform(0.005, 0.05))


def _lock_live(replay: Replay, session: SqlSession) -> bool:
    """Lock the live tables, then the log; False if that would have meant waiting too long.

    Each lock is waited for at most ``deadlock_timeout / (tables + 3)``, so
    the swap gives up well before a writer waiting on it would run its
    deadlock check; it then rolls back to its savepoint, dropping every
    lock it took.
    """
    import psycopg

    session.cursor.execute("SELECT setting::int AS ms FROM pg_settings WHERE name = 'deadlock_timeout'")
    deadlock_ms = int(dict(session.cursor.fetchall()[0])["ms"])
    timeout_ms = max(10, deadlock_ms // (len(replay.tables) + 3))
    session.execute_sql("SAVEPOINT cairn_swap_locks")
    try:
        session.execute_sql(f"SET LOCAL lock_timeout = '{timeout_ms}ms'")
        session.execute_sql(f"LOCK TABLE {', '.join(replay.tables)} IN ACCESS EXCLUSIVE MODE")
        if replay.writers:
            # The log's own lock (``projections/store/postgres.py``): held, no
            # writer can draw a position, so every event up to the head is
            # committed. Not LOCK TABLE on the events: writers hold the table
            # (ROW EXCLUSIVE) while they queue for the log's lock, so the swap
            # would wait on the whole queue, and time out under load.
            session.execute_sql(f"SELECT pg_advisory_xact_lock({replay.event_log.recorder.log_lock_key})")
        session.execute_sql("SET LOCAL lock_timeout = 0")
    except psycopg.errors.LockNotAvailable:
        session.execute_sql("ROLLBACK TO SAVEPOINT cairn_swap_locks")
        return False
    session.execute_sql("RELEASE SAVEPOINT cairn_swap_locks")
    return True


def _rename(replay: Replay, session: SqlSession) -> None:
    for table in replay.tables:
        session.execute_sql(f"ALTER TABLE {table} RENAME TO {table}{OLD_SUFFIX}")
        session.execute_sql(f"ALTER TABLE {table}{replay.suffix} RENAME TO {table}")
    replaced = ScratchSession(
        session.cursor,
        scratch_queries(replay.store.queries, scratch_names(replay.dialect, replay.tables, OLD_SUFFIX)),
        replay.dialect,
    )
    for target in replay.targets:
        target.projection.swapped_in(session, replaced)
    for table in replay.tables:
        session.execute_sql(f"DROP TABLE {table}{OLD_SUFFIX}")
    if replay.dialect == "postgres":
        # Implicit names (keys, sequences) came with the scratch suffix: take the live ones back.
        for table in replay.tables:
            for name, kind in _owned_relations(session, table):
                if replay.suffix in name:
                    session.execute_sql(f"ALTER {kind} {name} RENAME TO {name.replace(replay.suffix, '')}")
    else:
        # SQLite cannot rename an index: build the live ones again.
        ddl = table_ddl(replay.dialect, replay.tables)
        for table in replay.tables:
            for statement in ddl[table][1:]:
                index = index_name(statement)
                session.execute_sql(f"DROP INDEX IF EXISTS {index}{replay.suffix}")
                session.execute_sql(statement)


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

