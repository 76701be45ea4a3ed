"""Interactive shells relayed through the database, between any two server processes.

A worker running an interactive task holds one websocket open to some
server process (the *endpoint*); a client opens its own websocket, perhaps
to another process. Neither process can reach the other, so they meet
here: the client's process records a *session*, the endpoint's process
announces it to the worker, and each side writes the frames it receives
(``in``: client to worker, ``out``: worker to client) and reads the
other's. A frame is deleted once passed on; a session and whatever is left
of it goes when the reaper prunes it, a minute after it closed.

Each direction of a session has exactly one writer (the process holding
that end's websocket), so its sequence numbers are counted in memory.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

#: An endpoint is live while its heartbeat is younger than this (seconds).
ENDPOINT_ALIVE = 15.0
#: How long a closed session's rows stay, for the other end to see the close.
KEEP_CLOSED = 60.0
#: A session never closed (both processes gone) is dropped after this long.
KEEP_STALE = 24 * 3600.0


class ShellStore:
    def __init__(self, store: Any):
        self.store = store

    def _write(self) -> Any:
        return self.store.unit_of_work()

    # the worker's end

    def hold_endpoint(self, task_id: str, run_id: int, connection: str) -> None:
        with self._write() as session:
            session.run(
                "hold_shell_endpoint", {"task_id": task_id, "run_id": run_id, "connection": connection, "now": time.time()}
            )

    def release_endpoint(self, task_id: str, run_id: int, connection: str) -> list[str]:
        """Forget the endpoint and close its open sessions; their ids."""
        key = {"task_id": task_id, "run_id": run_id}
        with self._write() as session:
            session.run("release_shell_endpoint", {**key, "connection": connection})
            open_ids = [row["session_id"] for row in session.rows("open_shell_sessions_of_run", key)]
        return open_ids

    def endpoint_alive(self, task_id: str, run_id: int) -> bool:
        with self.store.reading() as session:
            row = session.one("shell_endpoint", {"task_id": task_id, "run_id": run_id})
        return row is not None and row["heartbeat"] > time.time() - ENDPOINT_ALIVE

    def take_new_sessions(self, task_id: str, run_id: int) -> list[dict[str, Any]]:
        """Sessions of the run not yet announced to its worker, now marked announced."""
        with self.store.reading() as session:
            found = session.rows("unannounced_shell_sessions", {"task_id": task_id, "run_id": run_id})
        if not found:
            return []
        with self._write() as session:
            for row in found:
                session.run("announce_shell_session", {"session_id": row["session_id"]})
        return [{"session": r["session_id"], "rows": r["rows_count"], "cols": r["cols_count"]} for r in found]

    # the client's end

    def open_session(self, task_id: str, run_id: int, rows: int, cols: int) -> str:
        session_id = uuid.uuid4().hex
        with self._write() as session:
            session.run(
                "open_shell_session",
                {"session_id": session_id, "task_id": task_id, "run_id": run_id, "rows": rows, "cols": cols,
                 "now": time.time()},
            )
        return session_id

    # either end

    def add_frame(self, session_id: str, direction: str, seq: int, kind: str, data: bytes = b"") -> None:
        with self._write() as session:
            session.run(
                "add_shell_frame", {"session_id": session_id, "direction": direction, "seq": seq, "kind": kind, "data": data}
            )
            if kind == "close":
                session.run("close_shell_session", {"session_id": session_id, "now": time.time()})

    def frames_after(self, session_id: str, direction: str, seq: int) -> list[tuple[int, str, bytes]]:
        """The frames waiting in one direction after ``seq``."""
        key = {"session_id": session_id, "direction": direction, "seq": seq}
        with self.store.reading() as session:
            rows = session.rows("shell_frames_after", key)
        return [(int(r["seq"]), r["kind"], bytes(r["data"])) for r in rows]

    def passed(self, session_id: str, direction: str, seq: int) -> None:
        """Frames up to ``seq`` have been passed on: drop them."""
        with self._write() as session:
            session.run("drop_passed_shell_frames", {"session_id": session_id, "direction": direction, "seq": seq})

    def prune(self, now: float) -> int:
        with self.store.reading() as session:
            rows = session.rows(
                "closed_shell_sessions", {"before": now - KEEP_CLOSED, "stale": now - KEEP_STALE, "limit": 500}
            )
        for row in rows:
            with self._write() as session:
                session.run("drop_shell_frames", {"session_id": row["session_id"]})
                session.run("drop_shell_session", {"session_id": row["session_id"]})
        with self._write() as session:
            session.run("stale_shell_endpoints", {"before": now - KEEP_STALE})
        return len(rows)
