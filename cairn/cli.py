"""The ``cairn`` command line."""

from __future__ import annotations

import sys

import click

from cairn.logging_setup import configure_logging
from cairn.settings import Settings


def _settings_help() -> str:
    lines = ["\b", "Configuration (environment variables):"]
    for name, default, text in Settings.describe():
        shown = f" [default: {default}]" if default else ""
        lines.append(f"  {name}{shown}")
        lines.append(f"      {text}")
    return "\n".join(lines)


@click.group()
def main() -> None:
    """Cairn: an event-sourced task engine that speaks Taskcluster's API."""


@main.command(epilog=_settings_help())
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=int, help="Port to listen on.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Server processes sharing the port (PostgreSQL only): one per core uses every core.")
def serve(host: str, port: int, workers: int) -> None:
    """Start the Cairn server: the HTTP API and every background process (see `cairn run --help`)."""
    import uvicorn

    from cairn.http_protocol import CairnHttpProtocol, with_served_root_url
    from cairn.runtime import Runtime
    from cairn.server import serving_app
    from cairn.startup_checks import CannotStart, check_backing_services

    try:
        settings = with_served_root_url(Settings.from_env(), host, port)
        configure_logging(settings.log_level, settings.log_format)
        check_backing_services(settings)
    except (ValueError, CannotStart) as e:
        raise click.ClickException(str(e)) from None
    if workers > 1:
        # Processes coordinate through PostgreSQL (advisory locks elect the
        # log followers' leaders; LISTEN wakes claimWork in every process).
        # SQLite's writers queue on a lock inside one process.
        if settings.backend != "postgres":
            raise click.ClickException("--workers needs PostgreSQL (CAIRN_DATABASE_URL=postgresql://...)")
        uvicorn.run("cairn.server:app_from_env", factory=True, workers=workers, host=host, port=port,
                    log_level=settings.log_level, access_log=False, log_config=None, http=CairnHttpProtocol)
        return
    runtime = Runtime(settings)
    app = serving_app(runtime)
    uvicorn.run(
        app, host=host, port=port, log_level=settings.log_level, access_log=False, log_config=None,
        http=CairnHttpProtocol,
    )


@main.command()
@click.option("--task-queue", "task_queue_id", default=None, metavar="PROVISIONER/WORKER_TYPE",
              help="Task queue to claim from, <provisionerId>/<workerType>.  [required]")
@click.option("--worker-group", default="local", show_default=True, help="workerGroup to claim as.")
@click.option("--worker-id", default=None, help="workerId to claim as.  [default: this host's name]")
@click.option("--capacity", default=1, show_default=True, type=click.IntRange(1, 32), help="Tasks to run at once.")
@click.option("--work-dir", default=None, type=click.Path(file_okay=False),
              help="Where task directories are made.  [default: a new temporary directory]")
@click.option("--ed25519-signing-key", "signing_key", default=None, type=click.Path(dir_okay=False),
              help="Key that signs the chain of trust of tasks with features.chainOfTrust.")
@click.option("--generate-key", "generate_key", default=None, type=click.Path(dir_okay=False),
              help="Write a new ed25519 signing key to this file, print its public key, and exit.")
def worker(task_queue_id: str | None, worker_group: str, worker_id: str | None, capacity: int, work_dir: str | None,
           signing_key: str | None, generate_key: str | None) -> None:
    """Run the reference worker: claim tasks from a task queue and run them here.

    It uses only the queue's public API, with the root URL and credentials in
    TASKCLUSTER_ROOT_URL, TASKCLUSTER_CLIENT_ID and TASKCLUSTER_ACCESS_TOKEN;
    the task payload is described by /schemas/worker/v1/payload.json.
    SIGTERM stops it: running tasks resolve as exception/worker-shutdown.
    The key files are generic-worker's: the base64 of the 32-byte ed25519 seed.
    """
    if generate_key:
        from cairn.cli_chain_of_trust import generate_signing_key

        generate_signing_key(generate_key)
        return
    if task_queue_id is None:
        raise click.UsageError("Missing option '--task-queue'.")
    try:
        from cairn.worker.worker import default_worker_id, run_worker
    except ImportError as e:
        raise click.ClickException(f"cairn worker needs the taskcluster client ({e}): pip install taskcluster") from None
    try:
        configure_logging("info", Settings.from_env().log_format)
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    try:
        run_worker(task_queue_id, worker_group, worker_id or default_worker_id(), capacity, work_dir, signing_key)
    except ValueError as e:
        raise click.ClickException(str(e)) from None


from cairn import cli_shell  # noqa: E402, F401  (cairn task shell)
from cairn.cli_admin import client, role, signin  # noqa: E402
from cairn.cli_chain_of_trust import verify_task  # noqa: E402
from cairn.cli_history import history, replay, show  # noqa: E402
from cairn.cli_tasks import group, task  # noqa: E402

main.add_command(task)
task.add_command(verify_task)
main.add_command(group)
main.add_command(signin)
main.add_command(client)
main.add_command(role)
main.add_command(history)
main.add_command(show)
main.add_command(replay)

from cairn.cli_hooks import hook  # noqa: E402
from cairn.cli_projections import export, projections  # noqa: E402
from cairn.cli_secrets import secret  # noqa: E402

main.add_command(projections)
main.add_command(export)
main.add_command(hook)
main.add_command(secret)

from cairn.cli_notify import notifications  # noqa: E402

main.add_command(notifications)

from cairn.cli_run import pulse_publisher, run  # noqa: E402

main.add_command(run)
main.add_command(pulse_publisher)


if __name__ == "__main__":
    sys.exit(main())
