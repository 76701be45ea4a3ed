"""The ``cairn`` command line."""

from __future__ import annotations

import logging
import sys

import click

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
def serve(host: str, port: int) -> None:
    """Start the Cairn server."""
    import uvicorn

    from cairn.runtime import Runtime
    from cairn.server import create_app

    try:
        settings = Settings.from_env()
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    runtime = Runtime(settings)
    app = create_app(runtime)
    uvicorn.run(app, host=host, port=port, log_level=settings.log_level, access_log=False)


if __name__ == "__main__":
    sys.exit(main())
