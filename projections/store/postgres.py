"""The PostgreSQL event store: the library's recorder, joined to Cairn's transactions.

The unit of work is ``EventStore``'s (``projections/store/base.py``): one
transaction on one pooled connection, current for this context.
Events commit in notification-id order, so a reader following the log never
passes over an id that fills in later: every insert holds one advisory lock
from before its ids are drawn to its commit (``_insert``).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any

import psycopg
import psycopg._queries as psycopg_queries
from eventsourcing.persistence import IntegrityError, OperationalError, StoredEvent
from psycopg.pq import PipelineStatus
from psycopg.sql import SQL, Identifier, Literal

from cairn.domain.errors import ReplayedRequest
from cairn.projections.store import eventsourcing_adapter as adapter
from cairn.projections.store.base import EventStore
from cairn.projections.store.combined_writes import CombinedWrites, LoggedInsert
from cairn.projections.store.notify_audience import Audience
from cairn.projections.store.queries import load_schema
from cairn.projections.store.session import SqlSession
from cairn.projections.store.write_first import WriteFirstConnection

#: Events a save sends as rows of a VALUES list; more go as one array (see ``_insert``).
VALUES_ROWS = 16

# psycopg parses a statement's placeholders on every execute unless the
# statement is short (4,096 characters) and has few parameters (50): its
# cache is meant to keep out an ORM's one-off statements. A save's joined
# statement is longer and has more, yet there is one per sequence of
# queries, each sent again and again: parsed anew each time, it was 5% of
# the server's time under load. Raised, such statements are cached too (the
# cache keeps the 128 used last).
if hasattr(psycopg_queries, "MAX_CACHED_STATEMENT_LENGTH") and hasattr(psycopg_queries, "MAX_CACHED_STATEMENT_PARAMS"):
    psycopg_queries.MAX_CACHED_STATEMENT_LENGTH = max(psycopg_queries.MAX_CACHED_STATEMENT_LENGTH, 32_768)
    psycopg_queries.MAX_CACHED_STATEMENT_PARAMS = max(psycopg_queries.MAX_CACHED_STATEMENT_PARAMS, 512)


class CairnPostgresRecorder(EventStore, adapter.LibraryPostgresRecorder):
    dialect = "postgres"
    statements_commit_alone = True  # the library's pool keeps its connections in autocommit mode

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: The log's lock: see ``_insert``.
        self.log_lock_key = log_lock_key(self.datastore.schema, self.events_table_name)
        #: The payload of this process's notifications: its own log listener
        #: has been told of its commits already (``LogSignal.listen``).
        self.notify_token = uuid.uuid4().hex
        self._notify_args = SQL("{0}, {1}").format(
            Literal(self.channel_name), Literal(self.notify_token)
        ).as_string()
        #: Whether another process listens on the channel (``notify_audience.py``): if not, no NOTIFY.
        self.audience = Audience(self.channel_name)
        self._insert_statements: dict[int, str] = {}
        self.combiner = CombinedWrites()
        self._events_table = SQL("{}.{}").format(
            Identifier(self.datastore.schema), Identifier(self.events_table_name)
        ).as_string()

    def create_table(self) -> None:
        """Create the events table and every view, once per version of the schema.

        Several processes may start at once, so creation is serialised by an
        advisory lock; and it is skipped when the recorded fingerprint of the
        DDL matches, because even ``CREATE INDEX IF NOT EXISTS`` takes a SHARE
        lock that would make a starting process queue behind (and deadlock
        with) writers already busy.
        """
        statements = load_schema(self.dialect)
        fingerprint = hashlib.sha256(
            "\n".join([self.events_table_name, *statements]).encode()
        ).hexdigest()
        with self.datastore.get_connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(7321001)")
            exists = conn.execute("SELECT to_regclass('cairn_schema') IS NOT NULL AS e").fetchone()
            if exists["e"]:
                row = conn.execute("SELECT fingerprint FROM cairn_schema WHERE id = 1").fetchone()
                if row is not None and row["fingerprint"] == fingerprint:
                    return
            super().create_table()
            for statement in statements:
                conn.execute(statement)
            conn.execute("CREATE TABLE IF NOT EXISTS cairn_schema (id INTEGER PRIMARY KEY, fingerprint TEXT NOT NULL)")
            conn.execute(
                "INSERT INTO cairn_schema (id, fingerprint) VALUES (1, %s) "
                "ON CONFLICT (id) DO UPDATE SET fingerprint = excluded.fingerprint",
                (fingerprint,),
            )

    def select_events(
        self,
        originator_id: Any,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Sequence[StoredEvent]:
        """An aggregate's events; inside a unit of work, read in its transaction.

        A command then needs one connection, not two: were every pooled
        connection held by a transaction waiting for a second one to load an
        aggregate, the pool would run dry under load.
        """
        session = self.current_session()
        if session is None:
            return super().select_events(originator_id, gt=gt, lte=lte, desc=desc, limit=limit)
        statement = self.events_select
        params: list[Any] = [originator_id]
        if gt is not None:
            statement += SQL(" AND originator_version > %s")
            params.append(gt)
        if lte is not None:
            statement += SQL(" AND originator_version <= %s")
            params.append(lte)
        statement += SQL(" ORDER BY originator_version DESC" if desc else " ORDER BY originator_version ASC")
        if limit is not None:
            statement += SQL(" LIMIT %s")
            params.append(limit)
        session.cursor.execute(statement, params, prepare=True)
        return [
            StoredEvent(
                originator_id=row["originator_id"],
                originator_version=row["originator_version"],
                topic=row["topic"],
                state=bytes(row["state"]),
            )
            for row in session.cursor.fetchall()
        ]

    def _insert(self, session: SqlSession, stored_events: Sequence[StoredEvent]) -> None:
        """The log's lock, the NOTIFY and the insert, without the library's per-save
        costs; then the queries deferred to log order.

        The library builds the NOTIFY anew each time and sends the events as
        one array of a composite type, which psycopg dumps as escaped text
        (a third of a lifecycle's parameter dumping). Here the NOTIFY is
        built once and the events go as rows of a VALUES list, each state as
        binary; the ids come back in the same order (``RETURNING``). Each
        count of rows is a statement of its own, prepared once used often,
        so only the common small saves take this way.

        The log's lock: events must commit in the order of their
        notification ids, so that a reader following the log never passes
        over an id that fills in later. Every insert takes one advisory lock
        (``log_lock_key``) before its ids are drawn, and holds it to the
        commit. The library takes ``LOCK TABLE ... EXCLUSIVE`` instead, a
        statement of its own; the advisory lock rides in the insert, taken
        once the views' writes sent with it are done.
        """
        curs = session.cursor
        count = len(stored_events)
        if count > VALUES_ROWS:
            # A save this large (a resolution releasing many dependents) goes
            # as the library sends it, one array whatever the count, after
            # the views' writes, the lock and the NOTIFY.
            session.release_writes()
            notify = f", pg_notify({self._notify_args})" if self.audience.others else ""
            curs.execute(f"SELECT pg_advisory_xact_lock({self.log_lock_key}){notify}")
            self.insert_rows_unlocked(curs, stored_events)
            # Another cursor: the insert's ids are read from this one.
            session.placed_in_log(curs.connection.cursor())
            return
        # One statement: the views' writes, then the log's lock, the insert
        # and the NOTIFY, then the writes deferred to log order
        # (``CombinedWrites.send_logged``).
        held, in_log_order = session.take_writes()
        _, rest = self.combiner.send_logged(curs, held, self._logged_insert(stored_events), in_log_order)
        if rest:
            self.combiner.send(curs.connection.cursor(), rest)

    def _logged_insert(self, stored_events: Sequence[StoredEvent]) -> LoggedInsert:
        count = len(stored_events)
        notify = self.audience.others
        statement = self._insert_statements.get(count)
        if statement is None:
            # The lock is a materialized CTE the insert's rows are joined to,
            # so it is held before the first row draws its id; the rows keep
            # their order (a join to one row). pg_notify is sent at COMMIT,
            # like NOTIFY.
            rows = ", ".join(
                [f"(%(e{i}_id)s::text, %(e{i}_v)s::bigint, %(e{i}_t)s::text, %(e{i}_s)b::bytea)" if i == 0 else
                 f"(%(e{i}_id)s, %(e{i}_v)s, %(e{i}_t)s, %(e{i}_s)b)" for i in range(count)]
            )
            statement = self._insert_statements[count] = (
                f"inserted AS (INSERT INTO {self._events_table} (originator_id, originator_version, topic, state) "
                f"SELECT v.* FROM (VALUES {rows}) AS v(originator_id, originator_version, topic, state), log_lock "
                "RETURNING notification_id)"
            )
        params: dict[str, Any] = {}
        for i, e in enumerate(stored_events):
            params[f"e{i}_id"], params[f"e{i}_v"], params[f"e{i}_t"], params[f"e{i}_s"] = (
                e.originator_id, e.originator_version, e.topic, e.state
            )
        return LoggedInsert(
            key=(count, notify),
            lock=f"SELECT pg_advisory_xact_lock({self.log_lock_key})",
            insert=statement,
            main=(f"SELECT notification_id FROM inserted, (SELECT pg_notify({self._notify_args})) AS notified"
                  if notify else "SELECT notification_id FROM inserted"),
            order="ORDER BY notification_id",
            params=params,
        )

    @contextmanager
    def _transaction(self, one_flight: bool = False) -> Iterator[Any]:
        try:
            with self._connection_transaction(one_flight) as cursor:
                yield cursor
        except IntegrityError as e:
            # The request's Hawk nonce, recorded in this flight
            # (``hawk_nonces.py``), was recorded before: a replay, which no
            # retry would change. Any other key is another writer's win.
            cause = e.__cause__
            if isinstance(cause, psycopg.Error) and cause.diag.table_name == "hawk_nonces":
                raise ReplayedRequest() from None
            raise
        except OperationalError as e:
            if isinstance(e.__cause__, LOST_RACES):
                raise LostRace(str(e)) from e.__cause__
            raise

    @contextmanager
    def _connection_transaction(self, one_flight: bool) -> Iterator[Any]:
        with self.datastore.get_connection() as conn:
            if not one_flight:
                with conn.transaction():
                    yield conn.cursor()
                return
            # Pipeline mode, and neither BEGIN nor COMMIT: PostgreSQL runs
            # all a pipeline sends up to its Sync as one implicit
            # transaction, and psycopg sends the Sync only at the pipeline's
            # end (a read in between asks the server to flush its answers,
            # which ends nothing). So the reads go in a first flight, taking
            # their row locks; every write after the last read (view rows,
            # the log's lock, NOTIFY, the events) is queued and goes with the
            # Sync, which commits: one wait for the lot, and two statements
            # fewer than BEGIN and COMMIT of their own.
            # A failed statement (another writer took this version) makes
            # the server skip the rest and roll the transaction back at the
            # Sync; the error is raised here, at the end.
            # A command that gives up (bad input, a conflict it found) leaves
            # the pipeline, whose Sync then commits what it sent: its reads,
            # harmlessly, or, once it has sent a write, nothing, because
            # ``_abandon`` closes the connection first. Never a ROLLBACK
            # statement in the pipeline: psycopg would read its result only
            # at the pipeline's end, forget its prepared statements then, and
            # send DEALLOCATE ALL after the next statement it prepares, which
            # the one after would miss ("prepared statement _pg3_N does not
            # exist").
            try:
                with conn.pipeline():
                    yield conn.cursor()
            except (psycopg.IntegrityError, *LOST_RACES):
                raise  # rolled back at the Sync, on a connection fit for reuse
            except psycopg.Error:
                # Anything else psycopg raised mid-flight (a value it could not
                # send, say) may leave its prepared-statement bookkeeping unlike
                # the server's: this connection is not reused.
                conn.close()
                raise

    def _abandon(self, cursor: Any) -> None:
        conn = cursor.connection
        if not conn.closed and conn.pgconn.pipeline_status != PipelineStatus.OFF:
            # The pipeline's Sync would commit what was sent: a connection
            # closed before it, the server rolls the transaction back.
            conn.close()

    @contextmanager
    def _read_cursor(self) -> Iterator[Any]:
        with self.datastore.get_connection() as conn:
            yield conn.cursor()

    @contextmanager
    def _batched(self, session: SqlSession) -> Iterator[None]:
        # In one pipeline, view writes whose results nobody reads travel
        # together with the lock, notify and insert, and the rows numbered
        # in log order after them: a round trip for the lot rather than
        # one for each (a read inside it syncs at once). A unit of work in
        # one flight is in pipeline mode already, and its commit goes too.
        # The views' writes are held and joined into few statements
        # (``combined_writes.py``), sent before the lock.
        with nullcontext() if _pipelined(session) else session.cursor.connection.pipeline():
            session.hold_writes()
            try:
                yield
            except BaseException:
                session.drop_writes()
                raise
            session.release_writes()

    def _inserted_ids(self, session: SqlSession, stored_events: Sequence[StoredEvent], inserted: Any) -> Any:
        # In one flight the ids arrive with the commit, after the save has
        # returned: nothing in Cairn reads them from a save (followers read
        # the log), so none are waited for.
        if _pipelined(session):
            return None
        return self.inserted_ids(session.cursor, stored_events)


#: What PostgreSQL answers a transaction it ended because of another: one of
#: two waiting on each other's row locks, or a snapshot another's commit made
#: stale. Its work is rolled back; deciding again on what the other left is
#: all a retry needs, as for another writer's win on the log's unique key.
LOST_RACES = (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure)


class LostRace(IntegrityError):
    """A transaction PostgreSQL ended for another's sake (``LOST_RACES``): the command retries it."""


def _pipelined(session: SqlSession) -> bool:
    return session.cursor.connection.pgconn.pipeline_status != PipelineStatus.OFF


def log_lock_key(schema: str, table: str) -> int:
    """The advisory lock of the log in ``schema.table``: a signed 64-bit number of its name."""
    digest = hashlib.sha256(f"cairn-log:{schema}.{table}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class CairnPostgresFactory(adapter.LibraryPostgresFactory):
    application_recorder_class = CairnPostgresRecorder
    connection_class = WriteFirstConnection
