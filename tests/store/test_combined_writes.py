"""Writes joined into fewer statements leave PostgreSQL as the same writes sent one by one."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from cairn.projections.store.combined_writes import CombinedWrites
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
