"""``cairn task shell``: a terminal into a running interactive task, through Cairn.

The worker of a task with ``features.interactive`` points the private
artifact ``private/interactive/shell`` at a websocket on Cairn; reading
that artifact takes ``queue:get-artifact:private/interactive/shell``, and
so does opening the websocket (signed with Hawk, as every call is). On a
terminal, the local one is put in raw mode and its size follows the
window; with input from a pipe, the input is typed into the shell and an
end of input ends it (Ctrl-D).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sys
import termios
import tty
from typing import Any

import click

from cairn.cli_output import api, taskcluster_options
from cairn.cli_tasks import task

SHELL_ARTIFACT = "private/interactive/shell"
REFUSALS = {
    401: "Cairn did not accept the credentials",
    403: f"the credentials lack queue:get-artifact:{SHELL_ARTIFACT}",
    404: "the run offers no shell (the task is not interactive, or its worker is gone)",
    409: "the run is not running any more",
}


@task.command("shell")
@click.argument("task_id")
@click.option("--run", "run_id", type=int, default=None, help="The run (default: the latest).")
def task_shell(task_id: str, run_id: int | None) -> None:
    """Open a shell in a running task that has features.interactive.

    The shell runs on the worker, in the task's directory with its
    environment; it ends when you exit it or when the task ends.
    """
    from taskcluster.exceptions import TaskclusterRestFailure

    queue = api("queue")
    if run_id is None:
        runs = queue.status(task_id)["status"]["runs"]
        if not runs:
            raise click.ClickException(f"task {task_id} has not run yet")
        run_id = len(runs) - 1
    try:
        content = queue.artifact(task_id, str(run_id), SHELL_ARTIFACT)
    except TaskclusterRestFailure as e:
        if e.status_code == 404:
            raise click.ClickException(f"task {task_id} run {run_id} offers no shell (no {SHELL_ARTIFACT})") from None
        raise click.ClickException(f"cannot read {SHELL_ARTIFACT}: {e}") from None
    if content.get("storageType") != "reference":
        raise click.ClickException(f"{SHELL_ARTIFACT} of task {task_id} run {run_id} is not a shell")
    columns, lines = shutil.get_terminal_size()
    url = f"{content['url']}?rows={lines}&cols={columns}"
    sys.exit(asyncio.run(_session(url, taskcluster_options())))


async def _session(url: str, options: dict[str, Any]) -> int:
    import aiohttp

    from cairn.worker.relay_client import websocket_headers

    credentials = options.get("credentials") or {}
    headers = websocket_headers(options["rootUrl"], credentials, url) if credentials.get("accessToken") else {}
    stdin, stdout = sys.stdin.fileno(), sys.stdout.fileno()
    terminal = os.isatty(stdin)
    async with aiohttp.ClientSession() as session:
        try:
            socket = await session.ws_connect("ws" + url.removeprefix("http"), headers=headers, heartbeat=20)
        except aiohttp.WSServerHandshakeError as e:
            raise click.ClickException(REFUSALS.get(e.status, f"the shell was refused ({e.status})")) from None
        saved = termios.tcgetattr(stdin) if terminal else None
        loop = asyncio.get_running_loop()
        typed: asyncio.Queue[bytes] = asyncio.Queue()
        try:
            if terminal:
                tty.setraw(stdin)
                loop.add_signal_handler(signal.SIGWINCH, lambda: typed.put_nowait(b""))
            loop.add_reader(stdin, lambda: typed.put_nowait(os.read(stdin, 65536) or b"\x04"))
            sending = asyncio.create_task(_send_typed(socket, typed, stdin, terminal))
            reason = ""
            try:
                while True:
                    message = await socket.receive()
                    if message.type == aiohttp.WSMsgType.BINARY:
                        os.write(stdout, message.data)
                    elif message.type == aiohttp.WSMsgType.CLOSE:
                        reason = message.extra or ""
                        break
                    elif message.type != aiohttp.WSMsgType.TEXT:
                        break
            finally:
                sending.cancel()
        finally:
            loop.remove_reader(stdin)
            if saved is not None:
                loop.remove_signal_handler(signal.SIGWINCH)
                termios.tcsetattr(stdin, termios.TCSADRAIN, saved)
        await socket.close()
        click.echo(f"\r\n[{reason or 'the shell has closed'}]", err=True)
    return 0


async def _send_typed(socket: Any, typed: asyncio.Queue[bytes], stdin: int, terminal: bool) -> None:
    ended = False
    while True:
        data = await typed.get()
        if data == b"":
            columns, lines = os.get_terminal_size(stdin)
            await socket.send_str(json.dumps({"type": "resize", "rows": lines, "cols": columns}))
        elif data == b"\x04" and not terminal:
            # The end of piped input: Ctrl-D to the shell, once; nothing more is read.
            if not ended:
                ended = True
                asyncio.get_running_loop().remove_reader(stdin)
                await socket.send_bytes(data)
        else:
            await socket.send_bytes(data)
