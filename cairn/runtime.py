"""The composition root: one place that builds every part of a running Cairn.

Settings in, an event log, views, services, caches and background consumers
out. The API, the CLI and the tests all start Cairn through :class:`Runtime`.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any
from urllib.parse import unquote, urlparse

from starlette.requests import Request

from cairn.api.authentication import authenticate
from cairn.api.call import Caller
from cairn.api.hawk import HawkAuthenticator
from cairn.domain.auth_service import AuthService
from cairn.domain.event_log import EventLog
from cairn.domain.scopes import satisfies
from cairn.domain.token_cipher import TokenCipher
from cairn.projections.auth_cache import AuthCache, StaticClient
from cairn.projections.auth_views import AuthViews
from cairn.settings import Settings

log = logging.getLogger("cairn")


def event_log_env(settings: Settings) -> dict[str, str]:
    """The eventsourcing library's configuration for our database URL."""
    env = {"ORIGINATOR_ID_TYPE": "text", "CREATE_TABLE": "y"}
    if settings.backend == "sqlite":
        path = settings.sqlite_path
        directory = os.path.dirname(path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        env.update(
            PERSISTENCE_MODULE="cairn.projections.sqlite_store",
            SQLITE_DBNAME=path,
            SQLITE_LOCK_TIMEOUT="30",
        )
        return env
    url = urlparse(settings.database_url)
    env.update(
        PERSISTENCE_MODULE="cairn.projections.postgres_store",
        POSTGRES_DBNAME=url.path.lstrip("/") or "postgres",
        POSTGRES_HOST=url.hostname or "127.0.0.1",
        POSTGRES_PORT=str(url.port or 5432),
        POSTGRES_USER=unquote(url.username or "postgres"),
        POSTGRES_PASSWORD=unquote(url.password or ""),
        POSTGRES_POOL_SIZE="8",
        POSTGRES_MAX_OVERFLOW="24",
        POSTGRES_CONNECT_TIMEOUT="10",
        POSTGRES_POOL_OPEN_TIMEOUT="10",
        POSTGRES_PRE_PING="y",
    )
    return env


def secret_key(settings: Settings) -> str:
    """The deployment key: from the environment, else kept in the data directory."""
    if settings.secret_key:
        return settings.secret_key
    path = os.path.join(settings.data_dir, "secret.key")
    if os.path.exists(path):
        with open(path) as f:
            return f.read().strip()
    os.makedirs(settings.data_dir, exist_ok=True)
    key = TokenCipher.generate_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")
    log.warning("generated a new deployment key in %s; keep it safe", path)
    return key


class Runtime:
    def __init__(self, settings: Settings, *, validate_output: bool = False):
        self.settings = settings
        self.validate_output = validate_output
        self.started = time.monotonic()
        self.log = EventLog(env=event_log_env(settings))
        self.store: Any = self.log.store
        self.cipher = TokenCipher(secret_key(settings))

        self.auth_views = AuthViews()
        self.store.view_writers.append(self.auth_views)

        static = {}
        if settings.root_access_token:
            static["static/root"] = StaticClient("static/root", settings.root_access_token, ("*",))
        self.auth_cache = AuthCache(self.store, self.cipher, static)
        self.auth = AuthService(self.log, self.cipher, self.auth_cache, self.auth_cache.invalidate)
        self.authenticator = HawkAuthenticator(
            self.auth_cache.lookup_client, self.auth_cache.expand, satisfies
        )

    async def authenticate_request(self, request: Request, body: bytes) -> Caller:
        return await authenticate(self.authenticator, request, body)

    def uptime(self) -> float:
        return time.monotonic() - self.started

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    def close(self) -> None:
        self.log.close()
