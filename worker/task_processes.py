"""Running a task's commands: each in a process group of its own, its output straight into the log.

The invariant: every byte a command writes before it ends — or before it is
killed — is in the log when :func:`run_process` returns, and nothing is
written to the log after. Three things make it hold.

- Output is not copied by a reader task that could be left behind: the pipe's
  protocol writes each chunk to the log in the callback that receives it.
- The end of a run is two events, not one: the process exits, and then its
  pipe closes — once the kernel has handed over every byte still buffered in
  it. :func:`run_process` waits for both. A process that escaped the group
  (``setsid``) may hold the pipe open long after; it is given ``DRAIN_TIMEOUT``
  seconds, then the pipe is closed on it, so an escaped daemon can neither
  stall the run nor write into a log that is already uploaded.
- The process runs in an asyncio task of its own that is never cancelled.
  Cancelling asyncio while it is still connecting a started process's pipes
  makes asyncio kill the process and drop what it had written meanwhile; and a
  second cancellation (``maxRunTime`` expiring while the worker shuts down)
  must not cut short the first one's draining. A cancellation only asks that
  task to kill the group; the caller then waits, through any further
  cancellation, until it has drained the pipe.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import signal
from pathlib import Path
from typing import Any, Protocol

#: Seconds a process's pipe may stay open after the process itself has ended (held by an escaped child).
DRAIN_TIMEOUT = 5.0


class Log(Protocol):
    def write(self, data: bytes) -> None: ...

    def line(self, text: str) -> None: ...


def commands_of(command: str | list[Any]) -> list[list[str]]:
    """The payload's ``command`` as a list of argument vectors."""
    if isinstance(command, str):
        return [["/bin/sh", "-c", command]]
    if all(isinstance(part, str) for part in command):
        return [list(command)]
    return [list(argv) for argv in command]


async def run_commands(commands: list[list[str]], cwd: Path, env: dict[str, str], task_log: Log,
                       max_run_time: float) -> int | None:
    """The exit status of the last command run (the first that is non-zero), or None past ``max_run_time``."""
    try:
        async with asyncio.timeout(max_run_time):
            status = 0
            for argv in commands:
                task_log.line(f"Running {shlex.join(argv)}")
                status = await run_process(argv, cwd, env, task_log)
                if status != 0:
                    break
            return status
    except TimeoutError:
        return None


async def run_process(argv: list[str], cwd: Path, env: dict[str, str], task_log: Log) -> int:
    """Run one command in a new process group; whatever is left of the group when it ends is killed.

    Cancelling this kills the group; it still returns (raises) only once the output is all in the log.
    """
    stopping = asyncio.Event()
    running = asyncio.create_task(_run_to_end(argv, cwd, env, task_log, stopping))
    try:
        return await asyncio.shield(running)
    finally:
        stopping.set()
        while not running.done():
            try:
                await asyncio.wait([running])
            except asyncio.CancelledError:
                # Cancelled again while draining: the first cancellation is the one that propagates.
                pass


class _IntoLog(asyncio.SubprocessProtocol):
    def __init__(self, task_log: Log):
        self.task_log = task_log
        loop = asyncio.get_running_loop()
        self.exited: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()

    def pipe_data_received(self, fd: int, data: bytes) -> None:  # type: ignore[override]
        self.task_log.write(data)

    def process_exited(self) -> None:
        if not self.exited.done():
            self.exited.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        # Called once the process has exited and every pipe has reached its end.
        for future in (self.exited, self.closed):
            if not future.done():
                future.set_result(None)


async def _run_to_end(argv: list[str], cwd: Path, env: dict[str, str], task_log: Log,
                      stopping: asyncio.Event) -> int:
    loop = asyncio.get_running_loop()
    try:
        transport, protocol = await loop.subprocess_exec(
            lambda: _IntoLog(task_log), *argv, cwd=cwd, env=env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, start_new_session=True,
        )
    except (OSError, ValueError) as e:  # ValueError: a NUL in an argument or a variable
        task_log.line(f"Cannot start {argv[0]!r}: {e}")
        return 127
    try:
        stopped = asyncio.ensure_future(stopping.wait())
        await asyncio.wait([protocol.exited, stopped], return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        pid = transport.get_pid()
        _kill_group(pid)
        await protocol.exited
        await asyncio.wait([protocol.closed], timeout=DRAIN_TIMEOUT)
        status = transport.get_returncode()
    finally:
        transport.close()
    return status if status is not None else -signal.SIGKILL


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
