"""What ``cairn serve`` checks before it starts: that it can reach its database and RabbitMQ.

A server that cannot reach them at start would only answer 503s, so it
refuses to start instead, saying which and why. Once started, losing either
is survived as before: requests answer 503 and the consumers reconnect.
"""

from __future__ import annotations

import asyncio
import os
from urllib.parse import urlparse, urlunparse

from cairn.api.heartbeat import CHECK_TIMEOUT, amqp_reachable
from cairn.settings import PREFIX, Settings


class CannotStart(Exception):
    """A service Cairn needs is unreachable; the message says which, and why."""


def without_password(url: str) -> str:
    parts = urlparse(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunparse(parts._replace(netloc=netloc))


def check_database(settings: Settings) -> None:
    if settings.backend == "sqlite":
        directory = os.path.dirname(os.path.abspath(settings.sqlite_path))
        try:
            os.makedirs(directory, exist_ok=True)
        except OSError as e:
            raise CannotStart(f"cannot create the database's directory {directory}: {e.strerror}") from None
        if not os.access(directory, os.W_OK):
            raise CannotStart(f"cannot write the database's directory {directory} ({PREFIX}DATABASE_URL)")
        return
    import psycopg

    try:
        with psycopg.connect(settings.database_url, connect_timeout=int(CHECK_TIMEOUT)):
            pass
    except psycopg.Error as e:
        reason = " ".join(str(e).split()) or type(e).__name__
        raise CannotStart(
            f"cannot reach the database at {without_password(settings.database_url)} "
            f"({PREFIX}DATABASE_URL): {reason}"
        ) from None


def check_amqp(settings: Settings) -> None:
    if not settings.amqp_url:
        return
    try:
        asyncio.run(asyncio.wait_for(amqp_reachable(settings.amqp_url), CHECK_TIMEOUT + 1))
    except Exception as e:
        reason = " ".join(str(e).split()) or type(e).__name__
        raise CannotStart(
            f"cannot reach RabbitMQ at {without_password(settings.amqp_url)} ({PREFIX}AMQP_URL): {reason}"
        ) from None


def check_backing_services(settings: Settings) -> None:
    """Raise CannotStart unless the database and (when configured) RabbitMQ answer."""
    check_database(settings)
    check_amqp(settings)
