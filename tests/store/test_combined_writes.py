"""Writes joined into fewer statements leave PostgreSQL as the same writes sent one by one;
a save's last statement takes the log's lock only once its view writes are done."""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
import pytest

from cairn.projections.store.combined_writes import CombinedWrites, LoggedInsert
from cairn.projections.store.queries import Query


def q(name: str, sql: str) -> Query:
    return Query(name, "", sql)


INSERT_A = q("insert_a", "INSERT INTO a (k, v) VALUES (%(k)s, %(v)s) ON CONFLICT (k) DO UPDATE SET v = excluded.v")
DELETE_A = q("delete_a", "DELETE FROM a WHERE k = %(k)s")
INSERT_B = q("insert_b", "INSERT INTO b (k, v) VALUES (%(k)s, %(v)s)")
COPY_A_TO_B = q("copy_a_to_b", "INSERT INTO b (k, v) SELECT k, v FROM a WHERE k = %(k)s")
COUNT_B_INTO_C = q("count_b_into_c", "INSERT INTO c (n) SELECT count(*) FROM b")
UPDATE_C = q("update_c", "UPDATE c SET n = n + %(by)s")
NOTIFY = q("notify", "SELECT pg_notify('combined_writes_test', %(k)s)")
SET_LOCAL = q("set_local", "SET LOCAL work_mem = '8MB'")


class Counting:
    """A cursor that counts the statements sent through it."""

    def __init__(self, cursor: Any):
        self.cursor, self.sent = cursor, []

    def execute(self, sql: str, params: Any) -> None:
        self.sent.append(sql)
        self.cursor.execute(sql, params)


@pytest.fixture
def db(postgres_database, tmp_path):
    with psycopg.connect(postgres_database.fresh(tmp_path), autocommit=True) as conn:
        yield conn


def fresh_tables(conn: Any) -> None:
    conn.execute("DROP TABLE IF EXISTS a, b, c")
    conn.execute("CREATE TABLE a (k TEXT PRIMARY KEY, v INTEGER)")
    conn.execute("CREATE TABLE b (k TEXT, v INTEGER)")
    conn.execute("CREATE TABLE c (n INTEGER)")


def state(conn: Any) -> tuple[list[Any], ...]:
    return tuple(conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2" if t != "c" else "SELECT * FROM c ORDER BY 1").fetchall()
                 for t in ("a", "b", "c"))


def both_ways(conn: Any, writes: list[tuple[Query, dict[str, Any]]]) -> tuple[Any, Any, list[str]]:
    fresh_tables(conn)
    for query, params in writes:
        conn.execute(query.sql, params)
    one_by_one = state(conn)
    fresh_tables(conn)
    cursor = Counting(conn.cursor())
    CombinedWrites().send(cursor, writes)
    return one_by_one, state(conn), cursor.sent


def test_writes_of_different_tables_go_as_one_statement(db):
    expected, joined, sent = both_ways(db, [(INSERT_A, {"k": "x", "v": 1}), (INSERT_B, {"k": "y", "v": 2}),
                                            (UPDATE_C, {"by": 3})])
    assert joined == expected
    assert len(sent) == 1 and sent[0].startswith("WITH w0 AS (INSERT INTO a")


def test_a_second_write_of_a_table_starts_a_new_statement(db):
    writes = [(INSERT_A, {"k": "x", "v": 1}), (INSERT_A, {"k": "x", "v": 2}), (DELETE_A, {"k": "x"}),
              (INSERT_A, {"k": "z", "v": 5})]
    expected, joined, sent = both_ways(db, writes)
    assert joined == expected == ([("z", 5)], [], [])
    assert len(sent) == 4


def test_a_write_that_reads_a_table_changed_before_it_sees_the_change(db):
    writes = [(INSERT_A, {"k": "x", "v": 7}), (COPY_A_TO_B, {"k": "x"}), (COUNT_B_INTO_C, {})]
    expected, joined, sent = both_ways(db, writes)
    assert joined == expected == ([("x", 7)], [("x", 7)], [(1,)])
    assert len(sent) == 3


def test_a_write_that_reads_a_table_changed_only_after_it_joins_them(db):
    writes = [(COUNT_B_INTO_C, {}), (INSERT_B, {"k": "y", "v": 2})]
    expected, joined, sent = both_ways(db, writes)
    assert joined == expected == ([], [("y", 2)], [(0,)])
    assert len(sent) == 1


def test_a_select_of_no_table_ends_the_last_statement_and_anything_else_goes_alone_in_its_place(db):
    db.execute("LISTEN combined_writes_test")
    writes = [(INSERT_A, {"k": "x", "v": 1}), (NOTIFY, {"k": "heard"}), (INSERT_B, {"k": "y", "v": 2}),
              (SET_LOCAL, {}), (UPDATE_C, {"by": 1}), (COPY_A_TO_B, {"k": "x"})]
    expected, joined, sent = both_ways(db, writes)
    assert joined == expected
    assert [s.split()[0] for s in sent] == ["WITH", "SET", "WITH"]
    assert "INSERT INTO a" in sent[0] and "INSERT INTO b" in sent[0]
    assert "UPDATE c" in sent[2] and sent[2].endswith("SELECT pg_notify('combined_writes_test', %(w2_k)s)")
    assert [n.payload for n in db.notifies(timeout=0.5, stop_after=2)] == ["heard", "heard"]


def test_a_row_read_on_first_use_gives_its_parameters_by_name(db):
    class Lazy(dict):  # as TaskRow: only its key until a value is asked for
        def __missing__(self, key: str) -> Any:
            self.update(k="lazy", v=9)
            return dict.__getitem__(self, key)

    expected, joined, sent = both_ways(db, [(INSERT_B, {"k": "y", "v": 2}), (INSERT_A, Lazy())])
    assert joined == expected == ([("lazy", 9)], [("y", 2)], [])
    assert len(sent) == 1


def test_a_select_of_a_table_ends_the_statement_it_follows(db):
    count_c = q("count_c", "SELECT count(*) FROM c")
    expected, joined, sent = both_ways(db, [(INSERT_A, {"k": "x", "v": 1}), (count_c, {}), (UPDATE_C, {"by": 1})])
    assert joined == expected
    assert [s.split()[0] for s in sent] == ["WITH", "UPDATE"]
    assert sent[0].endswith("SELECT count(*) FROM c")


def test_with_nothing_to_join_a_select_of_no_table_goes_alone(db):
    db.execute("LISTEN combined_writes_test")
    expected, joined, sent = both_ways(db, [(SET_LOCAL, {}), (NOTIFY, {"k": "alone"})])
    assert [s.split()[0] for s in sent] == ["SET", "SELECT"]
    assert [n.payload for n in db.notifies(timeout=0.5, stop_after=2)] == ["alone", "alone"]


DELETE_B = q("delete_b", "DELETE FROM b WHERE k = %(k)s")
UPDATE_SOME_C = q("update_some_c", "UPDATE c SET n = n + %(by)s WHERE n > 0 OR n < 0")


def test_a_plain_insert_joins_a_statement_that_wrote_its_table_and_nothing_else_does(db):
    writes = [(INSERT_B, {"k": "y", "v": 1}), (DELETE_B, {"k": "y"}), (INSERT_B, {"k": "y", "v": 2}),
              (INSERT_B, {"k": "z", "v": 3})]
    expected, joined, sent = both_ways(db, writes)
    assert joined == expected == ([], [("y", 2), ("z", 3)], [])
    # the delete must see the first insert: it starts a statement the later inserts join
    assert len(sent) == 2 and sent[1].startswith("WITH w0 AS (DELETE FROM b")


# What a save's last statement carries (``send_logged``): an insert into a
# log of its own here, under an advisory lock of this test's own.
LOCK_KEY = 7321999


def logged_insert(k: str) -> LoggedInsert:
    return LoggedInsert(
        key=1,
        lock=f"SELECT pg_advisory_xact_lock({LOCK_KEY})",
        insert="inserted AS (INSERT INTO e (k) SELECT v.k FROM (VALUES (%(e0_k)s::text)) AS v(k), log_lock RETURNING id)",
        main="SELECT id FROM inserted",
        order="ORDER BY id",
        params={"e0_k": k},
    )


def fresh_log(conn: Any) -> None:
    conn.execute("DROP TABLE IF EXISTS e")
    conn.execute("CREATE TABLE e (id BIGSERIAL PRIMARY KEY, k TEXT)")


def test_a_save_is_one_statement_that_leaves_the_tables_as_its_writes_sent_one_by_one(db):
    db.execute("LISTEN combined_writes_test")
    head = [(INSERT_A, {"k": "x", "v": 1}), (NOTIFY, {"k": "heard"}), (INSERT_B, {"k": "y", "v": 2})]
    in_log_order = [(INSERT_B, {"k": "z", "v": 3}), (UPDATE_SOME_C, {"by": 1}), (INSERT_A, {"k": "x", "v": 4}),
                    (DELETE_B, {"k": "y"})]
    fresh_tables(db)
    db.execute("INSERT INTO c (n) VALUES (10)")
    fresh_log(db)
    for query, params in head:
        db.execute(query.sql, params)
    db.execute("INSERT INTO e (k) VALUES ('event')")
    for query, params in in_log_order:
        db.execute(query.sql, params)
    one_by_one = (*state(db), db.execute("SELECT k FROM e").fetchall())
    fresh_tables(db)
    db.execute("INSERT INTO c (n) VALUES (10)")
    fresh_log(db)
    cursor = Counting(db.cursor())
    sent, rest = CombinedWrites().send_logged(cursor, head, logged_insert("event"), in_log_order)
    # the second write of ``a`` must see the first: it is left to be sent after, with what follows it
    assert sent == 1 and [query.name for query, _ in rest] == ["insert_a", "delete_b"]
    assert [row[0] for row in cursor.cursor.fetchall()] == [1]  # the insert's ids, as the main query
    for query, params in rest:
        db.execute(query.sql, params)
    assert (*state(db), db.execute("SELECT k FROM e").fetchall()) == one_by_one
    assert one_by_one[1] == [("z", 3)] and one_by_one[2] == [(11,)]
    assert [n.payload for n in db.notifies(timeout=0.5, stop_after=2)] == ["heard", "heard"]


def test_a_save_takes_the_log_lock_only_once_its_view_writes_are_done(db, postgres_database, tmp_path):
    """A view write waiting on a row another transaction holds must not wait holding the log's lock:
    that transaction may be about to wait for the lock, and neither would go on."""
    fresh_tables(db)
    fresh_log(db)
    url = db.info.dsn
    with psycopg.connect(url) as holder, psycopg.connect(url, autocommit=True) as saver:
        holder.execute("INSERT INTO a (k, v) VALUES ('x', 0)")  # uncommitted: the save's insert of x waits on it
        done = threading.Event()

        def save() -> None:
            with saver.transaction():
                CombinedWrites().send_logged(saver.cursor(), [(INSERT_A, {"k": "x", "v": 1})], logged_insert("e"), [])
            done.set()

        thread = threading.Thread(target=save)
        thread.start()
        waiting = "SELECT count(*) FROM pg_stat_activity WHERE pid = %s AND wait_event_type = 'Lock'"
        deadline = time.monotonic() + 10
        while db.execute(waiting, (saver.info.backend_pid,)).fetchone()[0] == 0:
            assert time.monotonic() < deadline, "the save never waited on the row"
            time.sleep(0.01)
        held = db.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid = %s",
            (saver.info.backend_pid,),
        ).fetchone()[0]
        holder.commit()
        thread.join(10)
        assert done.is_set()
        assert held == 0, "the save held the log's lock while it waited on a row"
    assert state(db)[0] == [("x", 1)]


def test_a_write_that_returns_rows_goes_before_a_save_on_its_own(db):
    returning = q("insert_a_returning", "INSERT INTO a (k, v) VALUES (%(k)s, %(v)s) RETURNING k")
    fresh_tables(db)
    fresh_log(db)
    cursor = Counting(db.cursor())
    sent, rest = CombinedWrites().send_logged(
        cursor, [(returning, {"k": "x", "v": 1})], logged_insert("event"), [(INSERT_B, {"k": "y", "v": 2})]
    )
    assert sent == 2 and rest == []
    assert cursor.sent[0] == returning.sql and "RETURNING 1" not in cursor.sent[1]
    assert state(db)[:2] == ([("x", 1)], [("y", 2)])
    assert db.execute("SELECT k FROM e").fetchall() == [("event",)]
