"""The eventsourcing library still has every private name Cairn's adapter relies on.

Fails on a release outside the pinned range, or one that renames, removes or
changes the parameters of anything ``projections/store/eventsourcing_adapter.py``
reaches into: then the adapter, and only it, needs a look.
"""

from __future__ import annotations

import inspect
from importlib.metadata import version

import pytest
from eventsourcing.application import ProcessingEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore
from packaging.specifiers import SpecifierSet

from cairn.projections.store import eventsourcing_adapter as adapter
from cairn.projections.store.postgres import CairnPostgresFactory
from cairn.projections.store.sqlite import CairnSQLiteFactory


def test_the_installed_library_is_in_the_range_the_adapter_was_written_for() -> None:
    assert version("eventsourcing") in SpecifierSet(",".join(adapter.SUPPORTED_VERSIONS))


def test_the_range_is_the_one_the_project_depends_on() -> None:
    from importlib.metadata import requires

    pinned = [r for r in requires("cairn") or [] if r.replace(" ", "").startswith("eventsourcing")]
    assert pinned and SpecifierSet(pinned[0].replace(" ", "")[len("eventsourcing"):]) == SpecifierSet(
        ",".join(adapter.SUPPORTED_VERSIONS)
    )


@pytest.mark.parametrize(
    "owner, name, parameters",
    adapter.PRIVATE_NAMES,
    ids=[f"{getattr(o, '__name__', o)}.{n}" for o, n, _ in adapter.PRIVATE_NAMES],
)
def test_each_private_name_exists_with_the_parameters_relied_on(owner, name, parameters) -> None:
    found = inspect.getattr_static(owner, name)
    if parameters is None:
        return
    function = getattr(found, "__func__", found)
    assert callable(function), f"{name} is no longer a function"
    assert tuple(inspect.signature(function).parameters)[: len(parameters)] == parameters


def test_a_processing_event_has_the_attributes_a_save_fills() -> None:
    made = ProcessingEvent()
    for attribute in adapter.PRIVATE_ATTRIBUTES["ProcessingEvent"]:
        assert hasattr(made, attribute)
    assert made.events == [] and made.aggregates == {} and made.saved_kwargs == {}


def test_a_sqlite_connection_of_the_pool_wraps_a_sqlite3_connection(tmp_path) -> None:
    import sqlite3

    recorder = CairnSQLiteFactory(
        {"SQLITE_DBNAME": str(tmp_path / "adapter.db"), "ORIGINATOR_ID_TYPE": "text", "CREATE_TABLE": "y"}
    ).application_recorder()
    assert isinstance(recorder, SQLiteApplicationRecorder)
    assert isinstance(recorder.datastore, SQLiteDatastore)
    with recorder.raw_connection() as raw:
        assert isinstance(raw, sqlite3.Connection)
        assert raw.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL, set once by Cairn
    conn = recorder.datastore.pool.get_connection(is_writer=None)
    try:
        for attribute in adapter.PRIVATE_ATTRIBUTES["SQLiteConnection"]:
            assert hasattr(conn, attribute)
    finally:
        recorder.datastore.pool.put_connection(conn)
    for attribute in adapter.PRIVATE_ATTRIBUTES["SQLiteDatastore"]:
        assert hasattr(recorder.datastore, attribute)
    for attribute in adapter.PRIVATE_ATTRIBUTES["SQLiteConnectionPool"]:
        assert hasattr(recorder.datastore.pool, attribute)


def test_sqlite_connections_keep_their_statements_prepared(tmp_path, monkeypatch) -> None:
    import sqlite3

    opened = []
    connect = sqlite3.connect

    def spying(*args, **kwargs):
        opened.append(kwargs)
        return connect(*args, **kwargs)

    monkeypatch.setattr(sqlite3, "connect", spying)
    recorder = CairnSQLiteFactory(
        {"SQLITE_DBNAME": str(tmp_path / "cache.db"), "ORIGINATOR_ID_TYPE": "text", "CREATE_TABLE": "y"}
    ).application_recorder()
    assert isinstance(recorder.datastore.pool, adapter.StatementCachingSQLitePool)
    with recorder.raw_connection() as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert isinstance(raw.execute("SELECT 1 AS one").fetchone(), sqlite3.Row)
    assert opened and all(k["cached_statements"] == adapter.STATEMENT_CACHE for k in opened)
    assert adapter.STATEMENT_CACHE >= 128  # not the library's True, which sqlite3 takes as 1


def test_a_postgres_recorder_has_the_statements_the_adapter_reads() -> None:
    # The statements are made in the constructor; no table is created.
    datastore = PostgresDatastore(
        dbname="postgres", host="127.0.0.1", port="5432", user="postgres", password="",
        pool_size=1, pool_open_timeout=10,
    )
    try:
        recorder = PostgresApplicationRecorder(datastore, events_table_name="cairn_events")
        for attribute in adapter.PRIVATE_ATTRIBUTES["PostgresApplicationRecorder"]:
            assert hasattr(recorder, attribute)
        assert any("LOCK TABLE" in s.as_string() for s in recorder.lock_table_statements)
        assert "cairn_events" in recorder.select_events_statement.as_string()
    finally:
        datastore.close()
    assert issubclass(CairnPostgresFactory.application_recorder_class, adapter.LibraryPostgresRecorder)
