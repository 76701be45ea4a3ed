"""`cairn serve` with every SQL statement and database round trip counted, for `make bench`.

Run as ``python -m bench.counted_serve serve --port N`` (the arguments of
``cairn``). Before Cairn is imported, the database drivers are wrapped:

- PostgreSQL (psycopg 3): a *statement* is one ``Cursor.execute``, one row
  of ``executemany``, or one BEGIN, COMMIT or ROLLBACK; a *round trip* is
  one time the client waits for the server to answer what it sent
  (``waits_for_answer``): out of pipeline mode, each statement; in
  pipeline mode, each flight, ended by a sync or by reading a result.
  Statements sent together in a pipeline are one round trip. Waiting for
  notifications (LISTEN) is not a round trip.
- SQLite: every statement the library runs, as its trace callback sees
  them (round trips do not apply: SQLite runs in the process).

On SIGUSR1 the counts so far are written, as JSON, to the file named by
``CAIRN_BENCH_COUNTS``; the bench reads them before and after a run.
Counting costs CPU of its own, so these servers only count: the timed
figures come from uncounted servers.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import sys
import threading
from typing import Any

import psycopg
from psycopg.pq import PipelineStatus, TransactionStatus

COUNTS: dict[str, Any] = {"statements": 0, "round_trips": 0, "by_statement": {}}
_lock = threading.Lock()


def _add(key: str, n: int = 1, text: Any = None) -> None:
    with _lock:
        COUNTS[key] += n
        if text is not None:
            name = " ".join(str(text if isinstance(text, str | bytes) else getattr(text, "_obj", text)).split())[:70]
            COUNTS["by_statement"][name] = COUNTS["by_statement"].get(name, 0) + n


#: psycopg's waits, in pipeline mode, for the answers to a flight.
_FLIGHT_ENDS = frozenset({"_fetch_gen", "_sync_gen", "_exit_gen"})
#: Its waits that send nothing, or wait for no answer.
_NO_ANSWER = frozenset({"notifies", "_enter_gen", "_communicate_gen", "_set_autocommit_gen"})


def waits_for_answer(conn: psycopg.Connection, gen: Any) -> bool:
    """Whether ``conn.wait(gen)`` waits for the server to answer what was sent: a round trip.

    Counted by what psycopg waits for rather than by what the socket does:
    how a flight's answer is read (while sending, or after) depends on
    timing, and a count that depends on timing cannot be compared.
    """
    name = getattr(gen, "__name__", "")
    if conn.pgconn.pipeline_status != PipelineStatus.OFF:
        if name == "_fetch_gen":  # reading a result: the flight so far is sent and answered, if any is due
            pipeline = conn._pipeline
            return pipeline is not None and bool(pipeline.result_queue)
        return name in _FLIGHT_ENDS
    if name in ("_commit_gen", "_rollback_gen"):  # nothing is sent with no transaction open
        return conn.pgconn.transaction_status != TransactionStatus.IDLE
    return name not in _NO_ANSWER


def install() -> None:
    execute, executemany = psycopg.Cursor.execute, psycopg.Cursor.executemany
    wait, exec_command = psycopg.Connection.wait, psycopg.Connection._exec_command

    def counted_execute(self: Any, query: Any, params: Any = None, **kwargs: Any) -> Any:
        _add("statements", text=query)
        return execute(self, query, params, **kwargs)

    def counted_executemany(self: Any, query: Any, params_seq: Any, **kwargs: Any) -> Any:
        params_seq = list(params_seq)
        _add("statements", len(params_seq), text=query)
        return executemany(self, query, params_seq, **kwargs)

    counted_apart: type | tuple[type, ...] = ()  # connections whose waits are counted at their own

    def counted_wait(self: Any, gen: Any, *args: Any, **kwargs: Any) -> Any:
        if not isinstance(self, counted_apart) and waits_for_answer(self, gen):
            _add("round_trips")
        return wait(self, gen, *args, **kwargs)

    def counted_exec_command(self: Any, command: Any, *args: Any, **kwargs: Any) -> Any:
        _add("statements", text=command)  # BEGIN, COMMIT, ROLLBACK, SAVEPOINT
        return exec_command(self, command, *args, **kwargs)

    psycopg.Cursor.execute = counted_execute
    psycopg.Cursor.executemany = counted_executemany
    psycopg.Connection.wait = counted_wait
    psycopg.Connection._exec_command = counted_exec_command

    connect = sqlite3.connect

    def counted_connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn = connect(*args, **kwargs)
        conn.set_trace_callback(lambda sql: _add("statements", text=sql))
        return conn

    sqlite3.connect = counted_connect

    # The store's connections (``WriteFirstConnection``) wait their own way
    # on the event loop (``loop_greenlets``), past psycopg's wait: they are
    # counted at their own wait instead. Cairn is imported only now, with the
    # drivers wrapped.
    from cairn.projections.store.write_first import WriteFirstConnection

    write_first_wait = WriteFirstConnection.wait

    def counted_write_first_wait(self: Any, gen: Any, *args: Any, **kwargs: Any) -> Any:
        if waits_for_answer(self, gen):
            _add("round_trips")
        return write_first_wait(self, gen, *args, **kwargs)

    WriteFirstConnection.wait = counted_write_first_wait
    counted_apart = WriteFirstConnection

    path = os.environ["CAIRN_BENCH_COUNTS"]

    def dump(*_: Any) -> None:
        with _lock:
            text = json.dumps(COUNTS)
        with open(path + ".tmp", "w") as f:
            f.write(text)
        os.replace(path + ".tmp", path)

    signal.signal(signal.SIGUSR1, dump)


if __name__ == "__main__":
    install()
    from cairn.cli import main

    sys.argv[0] = "cairn"
    main()
