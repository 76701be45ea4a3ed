"""What ``make run`` does: prepare ``.cairn/``, print credentials, start Cairn.

On first use it generates the deployment key and the root client's access
token (unless ``CAIRN_SECRET_KEY`` / ``CAIRN_ROOT_ACCESS_TOKEN`` are set) and
keeps them in the data directory, readable by the owner only. It prints the
exports that point the ``taskcluster`` client and CLI at this Cairn, then
runs the server (and, where available, a local worker) until interrupted.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import click

from cairn.domain.auth.token_cipher import TokenCipher

LOCAL_TASK_QUEUE = "local/worker"


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
    # Each in its own session: Ctrl-C reaches them only through the SIGTERMs below,
    # worker first, so that the server is still up to take its last reports.
    processes = [
        subprocess.Popen([*cairn, "serve", "--host", host, "--port", str(port)], env=env, start_new_session=True)
    ]
    # The local worker claims with the root client's credentials.
    worker_env = dict(env)
    worker_env.update(
        TASKCLUSTER_ROOT_URL=env["CAIRN_ROOT_URL"],
        TASKCLUSTER_CLIENT_ID="static/root",
        TASKCLUSTER_ACCESS_TOKEN=env["CAIRN_ROOT_ACCESS_TOKEN"],
    )
    processes.append(
        subprocess.Popen(
            [*cairn, "worker", "--task-queue", LOCAL_TASK_QUEUE],
            env=worker_env,
            start_new_session=True,
        )
    )
    click.echo(f"A local worker runs tasks from the task queue {LOCAL_TASK_QUEUE} (payload: /schemas/worker/v1/payload.json).")
    click.echo("Submit the example task and follow its log:\n")
    click.echo(f"  {_cli_path()} task create examples/hello.yml")
    click.echo(f"  {_cli_path()} task log -f <taskId>\n")
    try:
        while all(p.poll() is None for p in processes):
            try:
                processes[0].wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                pass
    except KeyboardInterrupt:
        pass
    finally:
        for p in reversed(processes):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
    failed = [p.returncode for p in processes if p.returncode not in (0, None, -signal.SIGTERM)]
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
