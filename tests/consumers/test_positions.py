"""A follower's position, recorded on its own: one statement on PostgreSQL (SQLite and PostgreSQL).

An at-least-once follower records its position after each batch it
handled, with nothing else to commit alongside: on PostgreSQL, whose pooled
connections commit each statement by itself, that is the upsert alone, not
BEGIN, the upsert and COMMIT. Inside a unit of work it joins that instead.
"""

from __future__ import annotations

from typing import Any

import psycopg

from cairn.consumers.log_follower import TrackedPosition, read_position


def counting_statements(monkeypatch) -> list[str]:
    sent: list[str] = []
    execute, exec_command = psycopg.Cursor.execute, psycopg.Connection._exec_command

    def counted_execute(self: Any, query: Any, params: Any = None, **kwargs: Any) -> Any:
        sent.append(str(query))
        return execute(self, query, params, **kwargs)

    def counted_command(self: Any, command: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(command.decode() if isinstance(command, bytes) else str(command))
        return exec_command(self, command, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "execute", counted_execute)
    monkeypatch.setattr(psycopg.Connection, "_exec_command", counted_command)
    return sent


def test_a_position_recorded_on_its_own_is_one_statement_where_statements_commit_alone(runtime, monkeypatch):
    store = runtime.log.store
    positions = TrackedPosition(store, "tests-positions")
    sent = counting_statements(monkeypatch)
    positions.advance(None, 41)
    positions.advance(None, 42)
    assert read_position(store, "tests-positions") == 42
    if store.dialect == "postgres":
        writes = [s for s in sent if not s.startswith("SELECT")]
        assert len(writes) == 2 and all("consumer_positions" in s for s in writes), writes


def test_a_position_recorded_inside_a_unit_of_work_commits_or_rolls_back_with_it(runtime):
    store = runtime.log.store
    positions = TrackedPosition(store, "tests-positions")
    positions.advance(None, 7)
    try:
        with store.unit_of_work():
            store.write_alone("set_consumer_position", {"name": "tests-positions", "position": 8})
            raise RuntimeError("give up")
    except RuntimeError:
        pass
    assert read_position(store, "tests-positions") == 7
    with store.unit_of_work():
        store.write_alone("set_consumer_position", {"name": "tests-positions", "position": 9})
    assert read_position(store, "tests-positions") == 9
