"""The relay's tables on SQLite and PostgreSQL: live logs by offset, shell frames in order, pruning."""

from __future__ import annotations

import time

import pytest

from cairn.projections.relay import live_logs
from cairn.projections.relay.live_logs import LiveLogStore, LogConflict
from cairn.projections.relay.shell_sessions import ShellStore

TOKEN = "a" * 32


def test_appends_land_at_their_offset_once(runtime):
    logs = LiveLogStore(runtime.store)
    assert logs.state("T", 0) is None
    assert logs.append("T", 0, TOKEN, 0, b"hello ", False).size == 6
    # A retry of an append, whole or overlapping, adds only what is new.
    assert logs.append("T", 0, TOKEN, 0, b"hello ", False).size == 6
    assert logs.append("T", 0, TOKEN, 3, b"lo world\n", False).size == 12
    assert logs.read("T", 0, 0) == b"hello world\n"
    assert logs.read("T", 0, 8) == b"rld\n"
    with pytest.raises(LogConflict):
        logs.append("T", 0, TOKEN, 20, b"gap", False)
    with pytest.raises(LogConflict):
        logs.append("T", 0, "b" * 32, 12, b"other token", False)
    state = logs.append("T", 0, TOKEN, 12, b"", True)
    assert (state.size, state.final) == (12, True)
    with pytest.raises(LogConflict):
        logs.append("T", 0, TOKEN, 12, b"more", False)
    # Another run's log is another log.
    assert logs.append("T", 1, TOKEN, 0, b"run 1", False).size == 5
    assert logs.read("T", 0, 0) == b"hello world\n"


def test_finished_logs_are_pruned_after_a_while_and_abandoned_ones_once_their_run_is_over(runtime, monkeypatch):
    logs = LiveLogStore(runtime.store)
    logs.append("F", 0, TOKEN, 0, b"done\n", True)
    logs.append("A", 0, TOKEN, 0, b"abandoned\n", False)
    logs.append("R", 0, TOKEN, 0, b"running\n", False)
    over = {"A": True, "R": False}
    later = time.time() + live_logs.KEEP_ABANDONED + 1
    assert logs.prune(time.time(), lambda task_id, run_id: over[task_id]) == 0
    assert logs.prune(later, lambda task_id, run_id: over[task_id]) == 2
    assert logs.state("F", 0) is None and logs.state("A", 0) is None
    assert logs.read("F", 0, 0) == b""
    assert logs.state("R", 0) is not None


def test_shell_frames_pass_in_order_and_closed_sessions_go(runtime):
    shells = ShellStore(runtime.store)
    assert not shells.endpoint_alive("T", 0)
    shells.hold_endpoint("T", 0, "c1")
    assert shells.endpoint_alive("T", 0)
    session = shells.open_session("T", 0, 30, 100)
    assert shells.take_new_sessions("T", 0) == [{"session": session, "rows": 30, "cols": 100}]
    assert shells.take_new_sessions("T", 0) == []
    shells.add_frame(session, "in", 1, "data", b"ls\n")
    shells.add_frame(session, "in", 2, "resize", b'{"rows": 40, "cols": 120}')
    assert [f[:2] for f in shells.frames_after(session, "in", 0)] == [(1, "data"), (2, "resize")]
    shells.passed(session, "in", 1)
    assert shells.frames_after(session, "in", 0) == [(2, "resize", b'{"rows": 40, "cols": 120}')]
    assert shells.frames_after(session, "out", 0) == []
    assert shells.release_endpoint("T", 0, "c1") == [session]
    shells.add_frame(session, "out", 1, "close", b"the task has ended")
    assert not shells.endpoint_alive("T", 0)
    assert shells.prune(time.time()) == 0
    assert shells.prune(time.time() + 120) == 1
    assert shells.frames_after(session, "out", 0) == []
