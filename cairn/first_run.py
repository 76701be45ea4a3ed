"""What ``make run`` does: prepare ``.cairn/``, print credentials, start Cairn.

On first use it generates the deployment key and the root client's access
token (unless ``CAIRN_SECRET_KEY`` / ``CAIRN_ROOT_ACCESS_TOKEN`` are set) and
keeps them in the data directory, readable by the owner only. It prints the
exports that point the ``taskcluster`` client and CLI at this Cairn, then
runs the server and, once it answers, a local worker, until interrupted
(Ctrl-C, SIGTERM or SIGHUP), when it stops both.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from cairn.domain.auth.token_cipher import TokenCipher

LOCAL_TASK_QUEUE = "local/worker"
#: How long the server may take to answer before the worker starts.
SERVER_START_TIMEOUT = 60.0


def _kept_secret(path: Path, make: Callable[[], str]) -> str:
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = make()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
    return value


def _cli_path() -> str:
    """How to call `cairn` from here: the virtualenv's script, relative when it can be."""
    script = Path(sys.executable).parent / "cairn"
    try:
        return str(script.relative_to(Path.cwd()))
    except ValueError:
        return str(script)


@click.command()
@click.option("--data-dir", default=".cairn", show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
def main(data_dir: str, host: str, port: int) -> None:
    if _port_taken(host, port):
        raise click.ClickException(
            f"{host}:{port} is already in use (another Cairn?). Stop what uses it, or pick another port: "
            "make run PORT=9000"
        )
    data = Path(data_dir)
    env = dict(os.environ)
    env.setdefault("CAIRN_DATA_DIR", str(data))
    env.setdefault("CAIRN_DATABASE_URL", f"sqlite:///{data / 'cairn.db'}")
    env.setdefault("CAIRN_ROOT_URL", f"http://{host}:{port}")
    if not env.get("CAIRN_SECRET_KEY"):
        env["CAIRN_SECRET_KEY"] = _kept_secret(data / "secret.key", TokenCipher.generate_key)
    if not env.get("CAIRN_ROOT_ACCESS_TOKEN"):
        env["CAIRN_ROOT_ACCESS_TOKEN"] = _kept_secret(
            data / "root-access-token", lambda: secrets.token_urlsafe(33)
        )

    click.echo("Cairn is starting. To use it from another shell:\n")
    click.echo(f"  export TASKCLUSTER_ROOT_URL={env['CAIRN_ROOT_URL']}")
    click.echo("  export TASKCLUSTER_CLIENT_ID=static/root")
    click.echo(f"  export TASKCLUSTER_ACCESS_TOKEN={env['CAIRN_ROOT_ACCESS_TOKEN']}\n")
    click.echo(f"(the token is kept in {data / 'root-access-token'}; Ctrl-C stops Cairn)\n")

    cairn = [sys.executable, "-m", "cairn.cli"]
    # Each in its own session, so that a Ctrl-C in this terminal reaches them
    # only through the SIGTERMs below: worker first, so that the server is
    # still up to take its last reports.
    processes = [
        subprocess.Popen([*cairn, "serve", "--host", host, "--port", str(port)], env=env, start_new_session=True)
    ]
    # SIGTERM and SIGHUP stop everything as Ctrl-C does (make passes SIGTERM on to us).
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    try:
        if _server_answers(f"http://{host}:{port}", processes[0]):
            processes.append(_start_worker(cairn, env))
            _print_next_steps()
            while all(p.poll() is None for p in processes):
                try:
                    processes[0].wait(timeout=0.5)
                except subprocess.TimeoutExpired:
                    pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        _stop(processes)
    failed = [p.returncode for p in processes if p.returncode not in (0, None, -signal.SIGTERM)]
    sys.exit(1 if failed else 0)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _port_taken(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def _server_answers(address: str, server: subprocess.Popen[bytes]) -> bool:
    """Wait until the server answers its load-balancer heartbeat; False if it exited first."""
    url = f"{address}/api/queue/v1/__lbheartbeat__"
    give_up = time.monotonic() + SERVER_START_TIMEOUT
    while server.poll() is None and time.monotonic() < give_up:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return True
        except OSError:
            time.sleep(0.2)
    if server.poll() is None:
        click.echo(f"Cairn did not answer at {address} within {SERVER_START_TIMEOUT:.0f} s; stopping it.", err=True)
    return False


def _start_worker(cairn: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    # The local worker claims with the root client's credentials.
    worker_env = dict(env)
    worker_env.update(
        TASKCLUSTER_ROOT_URL=env["CAIRN_ROOT_URL"],
        TASKCLUSTER_CLIENT_ID="static/root",
        TASKCLUSTER_ACCESS_TOKEN=env["CAIRN_ROOT_ACCESS_TOKEN"],
    )
    return subprocess.Popen(
        [*cairn, "worker", "--task-queue", LOCAL_TASK_QUEUE], env=worker_env, start_new_session=True
    )


def _print_next_steps() -> None:
    click.echo(f"A local worker runs tasks from the task queue {LOCAL_TASK_QUEUE} (payload: /schemas/worker/v1/payload.json).")
    click.echo("Submit the example task and follow its log:\n")
    click.echo(f"  {_cli_path()} task create examples/hello.yml")
    click.echo(f"  {_cli_path()} task log -f <taskId>\n")


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for p in reversed(processes):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


if __name__ == "__main__":
    main()
