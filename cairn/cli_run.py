"""``cairn run PROCESS``: one of the processes Cairn runs, alone (see ``cairn/processes.py``)."""

from __future__ import annotations

import asyncio
import signal

import click

from cairn.logging_setup import configure_logging
from cairn.processes import BY_NAME, PROCESSES
from cairn.settings import Settings


def _settings() -> Settings:
    try:
        settings = Settings.from_env()
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    configure_logging(settings.log_level, settings.log_format)
    return settings


def _listing() -> str:
    lines = ["\b", "Processes:"]
    for p in PROCESSES:
        lines.append(f"  {p.name:<16} {p.summary}" + (" (one leader at a time)" if p.leader else ""))
    return "\n".join(lines)


@click.command(epilog=_listing())
@click.argument("process", type=click.Choice([p.name for p in PROCESSES]))
@click.option("--host", default="127.0.0.1", show_default=True, help="web: address to listen on.")
@click.option("--port", default=8080, show_default=True, type=int, help="web: port to listen on.")
def run(process: str, host: str, port: int) -> None:
    """Run one process alone: `web` serves HTTP only, the others run without it.

    With PostgreSQL any number of copies may run; a process that needs a
    leader works in one of them at a time. Stops on SIGTERM or SIGINT.
    """
    if BY_NAME[process].with_web:
        raise click.ClickException(f"{process} serves the clients of a web process: it runs with `cairn run web`")
    settings = _settings()
    missing = BY_NAME[process].missing(settings)
    if missing:
        raise click.ClickException(missing)
    if process == "web":
        _serve_web(settings, host, port)
    else:
        asyncio.run(run_alone(settings, process))


def _serve_web(settings: Settings, host: str, port: int) -> None:
    import uvicorn

    from cairn.runtime import Runtime
    from cairn.server import serving_app

    runtime = Runtime(settings)
    runtime.processes.select(["web"])
    uvicorn.run(serving_app(runtime), host=host, port=port, log_level=settings.log_level, access_log=False)


async def run_alone(settings: Settings, process: str) -> None:
    from cairn.runtime import Runtime

    runtime = Runtime(settings)
    runtime.processes.select([process])
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await runtime.start()
        await stop.wait()
        await runtime.stop()
    finally:
        runtime.close()


@click.command("pulse-publisher", epilog="The same as `cairn run pulse-publisher`.")
def pulse_publisher() -> None:
    """Publish Pulse messages to CAIRN_AMQP_URL, without serving HTTP.

    Useful to run publishing in its own process; with PostgreSQL, any number
    may run and one publishes at a time.
    """
    settings = _settings()
    missing = BY_NAME["pulse-publisher"].missing(settings)
    if missing:
        raise click.ClickException(missing)
    asyncio.run(run_alone(settings, "pulse-publisher"))
