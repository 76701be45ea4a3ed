"""A command whose transaction PostgreSQL ends for another's sake is decided again.

Two transactions that each wait for a row lock the other holds deadlock;
PostgreSQL ends one of them (after ``deadlock_timeout``) and the other goes
on. Cairn's commands take their locks in one order so as not to deadlock
(``tests/acceptance/test_dependency_races.py``); a deadlock that happens all
the same is retried like a write another writer beat, not answered as a
database outage.
"""

from __future__ import annotations

import threading
import uuid

import pytest

from cairn.projections.store import event_log

pytestmark = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)


@pytest.mark.parametrize("one_flight", [True, False], ids=["one-flight", "plain"])
def test_the_transaction_ended_by_a_deadlock_is_retried(runtime, monkeypatch, one_flight):
    monkeypatch.setattr(event_log, "ONE_FLIGHT", one_flight)
    table = f"lost_race_{uuid.uuid4().hex}"
    with runtime.store.reading() as session:
        session.execute_sql(f"CREATE TABLE {table} (id int PRIMARY KEY)")
        session.execute_sql(f"INSERT INTO {table} VALUES (1), (2)")
    both_hold_one = threading.Barrier(2)
    attempts: list[str] = []
    results: dict[str, str] = {}
    errors: list[BaseException] = []

    def lock(session, row: int) -> None:
        session.cursor.execute(f"SELECT id FROM {table} WHERE id = {row} FOR UPDATE")
        session.cursor.fetchall()

    def command(name: str, first: int, second: int) -> None:
        def locks_both() -> str:
            session = runtime.store.current_session()
            lock(session, first)
            if name not in attempts:
                attempts.append(name)
                both_hold_one.wait(10)
            else:
                attempts.append(name)
            lock(session, second)
            return name

        try:
            results[name] = runtime.log.command(locks_both)
        except BaseException as e:  # noqa: BLE001  (asserted below)
            errors.append(e)

    threads = [threading.Thread(target=command, args=args) for args in (("a", 1, 2), ("b", 2, 1))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors, errors[0]
    assert results == {"a": "a", "b": "b"}
    assert sorted(attempts) in (["a", "a", "b"], ["a", "b", "b"])
