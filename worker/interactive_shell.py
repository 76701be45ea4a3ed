"""Shells into a running interactive task (``features.interactive``), relayed through Cairn.

While the task runs, the worker keeps one websocket open *to* Cairn
(``/api/relay/v1/task/<taskId>/runs/<runId>/shell/worker``, signed with the
run's claim credentials; reconnected if it drops) and points the private
artifact ``private/interactive/shell`` at the URL where clients open a
shell (``cairn task shell``). For each session Cairn announces, a shell
starts on a new pseudo-terminal, in the task's directory with the task's
environment, in a process group of its own; what it writes goes back over
the websocket, and what the client types comes in. A shell ends when it
exits, when its client goes, or when the task ends (``stop``): then its
process group is killed. The message format is in ``api/relay/shells.py``.
"""

from __future__ import annotations

import asyncio
import base64
import fcntl
import json
import logging
import os
import pty
import shutil
import signal
import struct
import subprocess
import termios
from collections.abc import Callable
from typing import Any

import aiohttp

from cairn.worker.relay_client import websocket_headers
from cairn.worker.task_artifacts import UPLOAD_ERRORS

log = logging.getLogger("cairn.worker")

SHELL_ARTIFACT = "private/interactive/shell"


def _shell_program() -> list[str]:
    for candidate in ("/bin/bash", "/usr/bin/bash"):
        if os.path.exists(candidate):
            return [candidate, "-i"]
    return [shutil.which("sh") or "/bin/sh", "-i"]


def _take_terminal() -> None:
    """In the child, after setsid: make the pseudo-terminal on stdin its controlling terminal."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def _kill_session(sid: int) -> None:
    """Kill the shell and everything it started: its jobs have process groups of their own, in its session."""
    members = {sid}
    if os.path.isdir("/proc"):
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    if os.getsid(int(entry)) == sid:
                        members.add(int(entry))
                except OSError:
                    pass
    for pid in members:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


class PtyShell:
    """One shell on a pseudo-terminal; ``send`` gets its output, then ``None`` and why it ended."""

    def __init__(self, cwd: str, env: dict[str, str], rows: int, cols: int,
                 send: Callable[[bytes | None, str], None]):
        self.send = send
        self.master, replica = pty.openpty()
        self.resize(rows, cols)
        try:
            self.process = subprocess.Popen(
                _shell_program(), cwd=cwd, env=env, stdin=replica, stdout=replica, stderr=replica,
                start_new_session=True, preexec_fn=_take_terminal, close_fds=True,
            )
        finally:
            os.close(replica)
        os.set_blocking(self.master, False)
        self.closed = False
        asyncio.get_running_loop().add_reader(self.master, self._readable)

    def resize(self, rows: int, cols: int) -> None:
        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view and not self.closed:
            try:
                view = view[os.write(self.master, view):]
            except BlockingIOError:
                continue
            except OSError:
                return

    def _readable(self) -> None:
        try:
            data = os.read(self.master, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            self.send(data, "")
            return
        # The terminal's other side is closed: the shell and all it started are done with it.
        self.close()
        self.send(None, f"the shell exited with status {self.process.returncode}")

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        asyncio.get_running_loop().remove_reader(self.master)
        _kill_session(self.process.pid)
        os.close(self.master)
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


class InteractiveShells:
    """The shells of one interactive run, and its websocket to Cairn."""

    def __init__(self, run: Any, env: dict[str, str], say: Callable[[str], None]):
        self.run = run
        self.env = {"TERM": "xterm-256color", **env}
        self.say = say
        self.shells: dict[str, PtyShell] = {}
        self.socket: aiohttp.ClientWebSocketResponse | None = None
        self.outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        base = f"{run.worker.root_url}/api/relay/v1/task/{run.task_id}/runs/{run.run_id}/shell"
        self.client_url = base
        self.worker_url = base + "/worker"
        self.serving: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()

    @classmethod
    async def start(cls, run: Any, env: dict[str, str], say: Callable[[str], None]) -> InteractiveShells:
        shells = cls(run, env, say)
        shells.serving = asyncio.create_task(shells._serve(), name=f"{run} shells")
        # The artifact is made once Cairn holds the connection, so that a client following it finds a shell.
        connecting = asyncio.ensure_future(shells.connected.wait())
        try:
            await asyncio.wait([connecting, shells.serving], timeout=10, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            await shells.stop()
            raise
        finally:
            connecting.cancel()
        if not shells.connected.is_set():
            say("Interactive shells are not offered: Cairn did not take the worker's shell connection")
            return shells
        try:
            await run.artifacts.point_at(SHELL_ARTIFACT, shells.client_url)
            say(f"Interactive shells: {SHELL_ARTIFACT} (cairn task shell {run.task_id})")
        except UPLOAD_ERRORS as e:
            say(f"Interactive shells are not offered: could not create {SHELL_ARTIFACT}: {e}")
        return shells

    async def stop(self) -> None:
        for shell in list(self.shells.values()):
            shell.close()
        self.shells.clear()
        if self.serving is not None:
            self.serving.cancel()
            await asyncio.wait([self.serving])
        if self.socket is not None:
            await self.socket.close()

    async def _serve(self) -> None:
        delay = 0.5
        while True:
            run = self.run
            try:
                headers = websocket_headers(run.worker.root_url, run.credentials, self.worker_url)
                url = "ws" + self.worker_url.removeprefix("http")
                async with run.session.ws_connect(url, headers=headers, heartbeat=20) as socket:
                    self.socket = socket
                    self.connected.set()
                    delay = 0.5
                    await self._relay(socket)
            except aiohttp.WSServerHandshakeError as e:
                if e.status in (401, 403, 404, 409):
                    log.warning("%s: Cairn refuses the shell connection (%s); no interactive shells", run, e)
                    return
                log.warning("%s: shell connection refused, trying again: %s", run, e)
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
                log.warning("%s: shell connection lost, trying again: %s", run, e)
            finally:
                self.socket = None
                for shell in list(self.shells.values()):
                    shell.close()
                self.shells.clear()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    async def _relay(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        sending = asyncio.create_task(self._send_outbox(socket))
        try:
            async for message in socket:
                if message.type == aiohttp.WSMsgType.TEXT:
                    self._handle(json.loads(message.data))
                elif message.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                    break
        finally:
            sending.cancel()

    async def _send_outbox(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        while True:
            await socket.send_str(json.dumps(await self.outbox.get()))

    def _handle(self, message: dict[str, Any]) -> None:
        session_id, kind = message.get("session"), message.get("type")
        if kind == "open" and session_id not in self.shells:
            try:
                self.shells[session_id] = PtyShell(
                    str(self.run.workdir), self.env, int(message.get("rows", 24)), int(message.get("cols", 80)),
                    lambda data, why: self._output(session_id, data, why),
                )
                self.say("An interactive shell was opened")
            except OSError as e:
                self.outbox.put_nowait({"type": "close", "session": session_id, "reason": f"no shell: {e}"})
            return
        shell = self.shells.get(session_id)
        if shell is None:
            return
        if kind == "data":
            shell.write(base64.b64decode(message.get("data", "")))
        elif kind == "resize":
            shell.resize(int(message["rows"]), int(message["cols"]))
        elif kind == "close":
            self.shells.pop(session_id).close()
            self.say("An interactive shell was closed")

    def _output(self, session_id: str, data: bytes | None, why: str) -> None:
        if data is None:
            self.shells.pop(session_id, None)
            self.outbox.put_nowait({"type": "close", "session": session_id, "reason": why})
            return
        self.outbox.put_nowait({"type": "data", "session": session_id, "data": base64.b64encode(data).decode()})
