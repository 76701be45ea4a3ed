"""The logs of running tasks, as their workers stream them to Cairn: kept in the database.

Why the database: any server process (``cairn serve --workers N``, or
servers on several hosts) may receive a worker's appends, and any other may
be asked for the log. Rows in ``live_logs`` and ``live_log_chunks`` are what
every process sees, on SQLite as on PostgreSQL, with no relay of our own
between processes. Logs are data, not events: like the bytes of an object,
they stay out of the event log; a run's log is uploaded as an artifact when
the run ends, and its chunks are then dropped (``prune``).

An append names the offset it starts at, so a retried append is harmless:
bytes the log already holds are skipped, and an append that would leave a
gap is refused. Appends to one run come from its one worker, one after the
other; should two race, the second finds the size moved and is refused.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

#: Chunks read from the database at a time, when a reader catches up.
READ_BATCH = 64
#: The longest chunk stored: an append holds at most this much (the API refuses more).
MAX_CHUNK = 1 << 20
#: How long a finished log's chunks stay after its last append (readers still at it), in seconds.
KEEP_FINISHED = 60.0
#: How long a log that was never finished stays after its last append, once its run is over.
KEEP_ABANDONED = 300.0


class LogConflict(Exception):
    """An append that does not fit the log as stored."""


@dataclass(frozen=True)
class LogState:
    token: str
    size: int
    final: bool
    updated: float


class LiveLogStore:
    def __init__(self, store: Any):
        self.store = store

    def state(self, task_id: str, run_id: int) -> LogState | None:
        with self.store.reading() as session:
            row = session.one("live_log_state", {"task_id": task_id, "run_id": run_id})
        return _state(row)

    def append(self, task_id: str, run_id: int, token: str, offset: int, data: bytes, final: bool) -> LogState:
        """Add ``data`` at ``offset``; the log's state after it. Raises LogConflict."""
        key = {"task_id": task_id, "run_id": run_id}
        now = time.time()
        with self.store.unit_of_work() as session:
            session.run("open_live_log", {**key, "token": token, "now": now})
            state = _state(session.one("live_log_state", key))
            assert state is not None
            if state.token != token:
                raise LogConflict("This run's live log was opened with another token.")
            if offset > state.size:
                raise LogConflict(f"The log holds {state.size} bytes: an append at {offset} would leave a gap.")
            fresh = data[state.size - offset:]
            if len(fresh) > MAX_CHUNK:
                raise LogConflict(f"An append holds at most {MAX_CHUNK} bytes.")
            if state.final:
                if fresh:
                    raise LogConflict("The log is complete: nothing can be added to it.")
                return state
            if not fresh and not final:
                return state
            if fresh:
                session.run("append_live_log_chunk", {**key, "start": state.size, "data": fresh})
            size = state.size + len(fresh)
            moved = session.run("grow_live_log", {**key, "size": size, "final": final, "now": now, "was": state.size})
            if moved != 1:
                raise LogConflict("Another append to this log came first; send this one again.")
        return LogState(token, size, final, now)

    def read(self, task_id: str, run_id: int, start: int) -> bytes:
        """The log's bytes from ``start`` on, as far as stored now (a batch of chunks at most)."""
        floor = start - MAX_CHUNK
        params = {"task_id": task_id, "run_id": run_id, "start": start, "floor": floor, "limit": READ_BATCH}
        with self.store.reading() as session:
            rows = session.rows("live_log_chunks_from", params)
        data = bytearray()
        position = start
        for row in rows:
            chunk = bytes(row["data"])
            if row["start"] > position:
                break
            data += chunk[position - row["start"]:]
            position = row["start"] + len(chunk)
        return bytes(data)

    def prune(self, now: float, run_is_over: Any) -> int:
        """Drop the logs finished over KEEP_FINISHED ago, and those abandoned by a run that is over."""
        removed = 0
        with self.store.reading() as session:
            quiet = session.rows("quiet_live_logs", {"before": now - KEEP_FINISHED, "limit": 500})
        for row in quiet:
            key = {"task_id": row["task_id"], "run_id": row["run_id"]}
            if not row["final"]:
                state = self.state(row["task_id"], row["run_id"])
                if state is None or state.updated > now - KEEP_ABANDONED or not run_is_over(*key.values()):
                    continue
            with self.store.unit_of_work() as session:
                session.run("drop_live_log_chunks", key)
                session.run("drop_live_log", key)
            removed += 1
        return removed


def _state(row: dict[str, Any] | None) -> LogState | None:
    if row is None:
        return None
    return LogState(row["token"], int(row["size"]), bool(row["final"]), float(row["updated"]))
