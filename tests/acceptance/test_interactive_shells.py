"""Interactive tasks: shells into a running task, relayed through Cairn to a real ``cairn worker``.

The worker opens its websocket outwards to the server; clients open theirs
to the server too — through ``cairn task shell`` or, to reach a second
server process on the same database, directly.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from typing import Any

import aiohttp
import pytest
import taskcluster

from cairn.worker.relay_client import websocket_headers
from tests.acceptance.test_worker import (  # noqa: F401  (fixtures)
    create,
    resolved,
    server,
    settings_overrides,
    start_worker,
    task_log,
    wait_for,
)
from tests.conftest import free_port
from tests.integration.cairn_process import start_server, stop_server

SHELL = "private/interactive/shell"


def _interactive_task(queue: Any, go: Any) -> str:
    return create(queue, {
        "command": f"echo waiting; while [ ! -e {go} ]; do sleep 0.05; done; echo done",
        "env": {"GREETING": "hello-from-the-task"},
        "features": {"interactive": True},
    })


def _shell_url(queue: Any, task_id: str) -> str:
    def reference() -> dict[str, Any] | None:
        try:
            return queue.artifact(task_id, "0", SHELL)
        except taskcluster.exceptions.TaskclusterRestFailure as e:
            if e.status_code == 404:
                return None
            raise

    return wait_for(reference, what="the shell artifact")["url"]


def _cairn(server: Any, *args: str, input: str | None = None, credentials: dict[str, str] | None = None,
           timeout: float = 60) -> subprocess.CompletedProcess[str]:
    credentials = credentials or server.options()["credentials"]
    env = dict(os.environ, TASKCLUSTER_ROOT_URL=server.root_url, TASKCLUSTER_CLIENT_ID=credentials["clientId"],
               TASKCLUSTER_ACCESS_TOKEN=credentials["accessToken"])
    return subprocess.run([sys.executable, "-m", "cairn.cli", *args], input=input, env=env, capture_output=True,
                          text=True, timeout=timeout)


def _limited_client(server: Any, scopes: list[str]) -> dict[str, str]:
    auth = server.client("auth")
    client_id = f"tests/limited-{taskcluster.slugId()}"
    created = auth.createClient(client_id, {"expires": taskcluster.stringDate(taskcluster.fromNow("1 hour")),
                                            "description": "shell tests", "scopes": scopes})
    return {"clientId": client_id, "accessToken": created["accessToken"]}


async def _talk(url: str, credentials: dict[str, str], root_url: str, typed: bytes,
                resize: tuple[int, int] | None = None) -> tuple[bytes, str]:
    """Type into the shell at ``url``; everything it sends back until it closes, and why it closed."""
    headers = websocket_headers(root_url, credentials, url)
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect("ws" + url.removeprefix("http"), headers=headers) as socket:
            if resize:
                await socket.send_str(json.dumps({"type": "resize", "rows": resize[0], "cols": resize[1]}))
            await socket.send_bytes(typed)
            received = b""
            while True:
                message = await asyncio.wait_for(socket.receive(), 30)
                if message.type == aiohttp.WSMsgType.BINARY:
                    received += message.data
                else:
                    return received, message.extra or ""


def test_a_shell_runs_commands_in_the_task_and_closes_when_the_task_ends(server, start_worker, tmp_path):
    queue = server.client("queue")
    worker = start_worker()
    go = tmp_path / "go"
    task_id = _interactive_task(queue, go)
    url = _shell_url(queue, task_id)
    assert url == f"{server.root_url}/api/relay/v1/task/{task_id}/runs/0/shell"

    done = _cairn(server, "task", "shell", task_id, input="echo $GREETING-$TASK_ID; pwd; stty size; exit 3\n")
    assert done.returncode == 0, done.stderr
    assert f"hello-from-the-task-{task_id}" in done.stdout
    assert f"{worker.work_dir.resolve()}/{task_id}-0/work" in done.stdout
    assert "the shell exited with status 3" in done.stderr

    # A shell left open is closed when the task ends, and what it started is killed.
    pid_file = tmp_path / "shell-child.pid"
    holder = subprocess.Popen(
        [sys.executable, "-m", "cairn.cli", "task", "shell", task_id], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=dict(os.environ, TASKCLUSTER_ROOT_URL=server.root_url, TASKCLUSTER_CLIENT_ID="static/root",
                 TASKCLUSTER_ACCESS_TOKEN=server.options()["credentials"]["accessToken"]),
    )
    try:
        assert holder.stdin is not None
        holder.stdin.write(f"sleep 300 & echo $! > {pid_file}\n".encode())
        holder.stdin.flush()
        child = int(wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(), what="the shell's child"))
        go.touch()
        _, stderr = holder.communicate(timeout=30)
    finally:
        if holder.poll() is None:
            holder.kill()
    assert b"the task has ended" in stderr
    assert resolved(queue, task_id)["state"] == "completed"
    wait_for(lambda: not _alive(child), timeout=10, what="the shell's child to be killed")
    assert "An interactive shell was opened" in task_log(queue, task_id)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_shell_needs_the_scope_of_its_private_artifact(server, start_worker, tmp_path):
    queue = server.client("queue")
    start_worker()
    go = tmp_path / "go"
    task_id = _interactive_task(queue, go)
    url = _shell_url(queue, task_id)
    try:
        # Without it, neither the artifact nor the websocket is open to a client.
        outsider = _limited_client(server, ["queue:get-artifact:public/*"])
        refused = _cairn(server, "task", "shell", task_id, input="exit\n", credentials=outsider)
        assert refused.returncode != 0
        assert "InsufficientScopes" in refused.stderr or "insufficient scopes" in refused.stderr.lower()
        with pytest.raises(aiohttp.WSServerHandshakeError) as denied:
            asyncio.run(_talk(url, outsider, server.root_url, b"exit\n"))
        assert denied.value.status == 403

        # With the scope, a client that may read nothing else gets its shell.
        insider = _limited_client(server, [f"queue:get-artifact:{SHELL}"])
        output, reason = asyncio.run(
            _talk(url, insider, server.root_url, b"echo $((6 * 7)); stty size; exit\n", resize=(41, 117))
        )
        assert b"42" in output
        assert b"41 117" in output  # the terminal took the size the client asked for
        assert "exited with status 0" in reason
    finally:
        go.touch()
    assert resolved(queue, task_id)["state"] == "completed"
    # Once the run is over there is no shell to open.
    with pytest.raises(aiohttp.WSServerHandshakeError) as over:
        asyncio.run(_talk(url, server.options()["credentials"], server.root_url, b"exit\n"))
    assert over.value.status == 409


def test_a_shell_opened_on_another_server_process_reaches_the_worker(server, start_worker, tmp_path, database_url):
    queue = server.client("queue")
    start_worker()
    go = tmp_path / "go"
    task_id = _interactive_task(queue, go)
    url = _shell_url(queue, task_id)
    port = free_port()
    other = start_server(database_url, tmp_path / "other", port)
    try:
        other_root = f"http://127.0.0.1:{port}"
        elsewhere = url.replace(server.root_url, other_root)
        output, reason = asyncio.run(
            _talk(elsewhere, server.options()["credentials"], other_root, b"echo via-$((40 + 2)); exit\n")
        )
        assert b"via-42" in output
        assert "exited with status 0" in reason
    finally:
        go.touch()
        stop_server(other)
    assert resolved(queue, task_id)["state"] == "completed"
