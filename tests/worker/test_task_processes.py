"""A task's commands as real processes: everything they write reaches the log, however they end.

The worker kills a task's process group when the task is cancelled, past its
``maxRunTime``, or when the worker shuts down; these tests stop commands at
every moment of their lives and compare the log with what the command says
it wrote.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from pathlib import Path

from cairn.worker.task_processes import DRAIN_TIMEOUT, run_commands, run_process


class MemoryLog:
    """A task log that refuses writes once closed, as the worker's does."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.closed = False
        self.late: list[bytes] = []

    def write(self, data: bytes) -> None:
        if self.closed:
            self.late.append(data)
        else:
            self.data += data

    def line(self, text: str) -> None:
        self.write(f"[worker] {text}\n".encode())

    def output(self) -> list[str]:
        return [line for line in self.data.decode().splitlines() if not line.startswith("[worker] ")]


def environment() -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", os.defpath)}


def counting(noted: Path) -> list[str]:
    """Writes numbered lines until killed, noting in ``noted`` each number once its line is written."""
    return ["/bin/sh", "-c", f'echo first; i=0; while i=$((i + 1)); do echo "line $i"; echo $i >> {noted}; done']


async def stop_after(delay: float, argv: list[str], cwd: Path, log: MemoryLog, cancels: int) -> None:
    running = asyncio.create_task(run_process(argv, cwd, environment(), log))
    await asyncio.sleep(delay)
    for _ in range(cancels):
        running.cancel()
        await asyncio.sleep(random.random() * 0.002)
    try:
        await running
    except asyncio.CancelledError:
        pass
    log.closed = True


def assert_complete(log: MemoryLog, noted: Path, attempt: str) -> None:
    output = log.output()
    numbers = noted.read_text().split() if noted.exists() else []
    last_noted = int(numbers[-1]) if numbers else 0
    if output:
        assert output[0] == "first", attempt
        assert output[1:] == [f"line {n}" for n in range(1, len(output))], attempt
    assert max(len(output) - 1, 0) >= last_noted, f"{attempt}: line {last_noted} was written, not logged"


def test_output_written_just_before_a_kill_is_all_in_the_log(tmp_path):
    """Commands stopped at random moments, from their first microseconds on, once or again and again."""

    async def attempts() -> None:
        for attempt in range(60):
            noted = tmp_path / f"noted-{attempt}"
            log = MemoryLog()
            delay = random.choice([0, 0.001, 0.005, random.random() * 0.05])
            await stop_after(delay, counting(noted), tmp_path, log, cancels=1 + attempt % 3)
            assert_complete(log, noted, f"attempt {attempt} (stopped after {delay:.3f} s)")
            # Nothing reached the log after run_process returned.
            await asyncio.sleep(0.01)
            assert log.late == [], f"attempt {attempt}: written after the run ended: {log.late[:3]}"

    asyncio.run(attempts())


def test_a_second_cancel_does_not_cut_the_draining_short(tmp_path):
    """maxRunTime expiring while the worker shuts down cancels twice: the log is still whole.

    A child that left the process group keeps the pipe and writes after the group was killed;
    the run waits for it (up to DRAIN_TIMEOUT) even when cancelled again meanwhile.
    """
    escaped_started = tmp_path / "escaped"
    argv = ["/bin/sh", "-c", f"echo first; setsid sh -c 'touch {escaped_started}; sleep 0.3; echo late' & exec sleep 60"]

    async def attempt() -> MemoryLog:
        log = MemoryLog()
        running = asyncio.create_task(run_process(argv, tmp_path, environment(), log))
        while not escaped_started.exists():
            await asyncio.sleep(0.01)
        running.cancel()
        await asyncio.sleep(0.02)
        running.cancel()
        try:
            await running
        except asyncio.CancelledError:
            pass
        log.closed = True
        return log

    log = asyncio.run(attempt())
    assert log.output() == ["first", "late"]
    assert log.late == []


def test_a_child_that_escaped_the_group_cannot_hold_the_run(tmp_path):
    """A background daemon keeping the pipe open is given DRAIN_TIMEOUT seconds, not its whole life."""
    pid_file = tmp_path / "escaped.pid"
    argv = ["/bin/sh", "-c", f"echo first; setsid sh -c 'echo $$ > {pid_file}; exec sleep 60' & "
                             f"while [ ! -s {pid_file} ]; do sleep 0.01; done; echo started"]
    log = MemoryLog()
    started = time.monotonic()
    try:
        status = asyncio.run(run_process(argv, tmp_path, environment(), log))
        took = time.monotonic() - started
    finally:
        os.kill(int(pid_file.read_text()), signal.SIGKILL)
    assert status == 0
    assert DRAIN_TIMEOUT - 0.5 < took < DRAIN_TIMEOUT + 5
    assert log.output() == ["first", "started"]


def test_commands_run_in_turn_until_one_fails_or_time_runs_out(tmp_path):
    log = MemoryLog()
    status = asyncio.run(run_commands([["echo", "one"], ["sh", "-c", "exit 3"], ["echo", "never"]],
                                      tmp_path, environment(), log, 30))
    assert (status, log.output()) == (3, ["one"])

    log = MemoryLog()
    started = time.monotonic()
    status = asyncio.run(run_commands([["sh", "-c", "echo slow; exec sleep 60"]], tmp_path, environment(), log, 0.5))
    assert (status, log.output()) == (None, ["slow"])
    assert time.monotonic() - started < 10


def test_a_command_that_cannot_start_says_why_and_exits_127(tmp_path):
    for argv in (["/no/such/program"], ["echo", "a\0b"]):
        log = MemoryLog()
        status = asyncio.run(run_commands([argv], tmp_path, environment(), log, 30))
        assert status == 127
        assert f"[worker] Cannot start {argv[0]!r}: " in log.data.decode()
