"""Fixtures shared by the whole suite: back ends, a runtime, and a live server.

Every test that takes ``database_url`` (directly or through ``runtime`` or
``server``) runs once on SQLite and once on PostgreSQL. PostgreSQL tests get
a fresh database cloned from a template, so they never see each other.
Without PostgreSQL or RabbitMQ the tests that need them are skipped — except
in CI (``CI`` set), where a missing service fails the run.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import uvicorn

from cairn.domain.auth.token_cipher import TokenCipher
from cairn.runtime import Runtime
from cairn.server import create_app
from cairn.settings import Settings

PG_ADMIN_URL = os.environ.get("CAIRN_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
AMQP_URL = os.environ.get("CAIRN_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672/")
ROOT_TOKEN = "root-access-token-for-tests-only-0123456789ab"
IN_CI = bool(os.environ.get("CI"))


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def _postgres_available() -> bool:
    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=2):
            return True
    except psycopg.Error:
        return False


POSTGRES_OK = _postgres_available()
RABBITMQ_OK = _reachable("127.0.0.1", 5672)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", help="also run the long stress cases")


def pytest_sessionstart(session: pytest.Session) -> None:
    if IN_CI:
        missing = [name for name, ok in (("PostgreSQL", POSTGRES_OK), ("RabbitMQ", RABBITMQ_OK)) if not ok]
        if missing:
            raise pytest.UsageError(
                f"CI is set but {' and '.join(missing)} is not reachable on 127.0.0.1"
            )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow"):
        return
    skip_slow = pytest.mark.skip(reason="long case: run with make test-stress")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_slow)


def reference_path() -> Path:
    """Where Taskcluster's reference data lives: CAIRN_REFERENCE_DIR, else beside the repo."""
    default = Path(__file__).resolve().parents[2] / "shared" / "reference"
    return Path(os.environ.get("CAIRN_REFERENCE_DIR", default))


def reference_dir(needed: str = "") -> Path:
    """The reference directory, holding ``needed``; a test without it skips, or fails in CI."""
    path = reference_path()
    if not (path / needed).exists():
        message = f"Taskcluster reference data not found in {path} (set CAIRN_REFERENCE_DIR)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


class PostgresDatabase:
    """One database per test process, emptied before each test.

    Creating a database per test costs a checkpoint each time; truncating
    every table (and restarting their sequences) gives each test the same
    empty, schema-ready database for a fraction of that.
    """

    def __init__(self) -> None:
        self.name = f"cairn_t_{uuid.uuid4().hex[:12]}"
        self.url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + self.name
        self._ready = False

    def _admin(self) -> psycopg.Connection[Any]:
        return psycopg.connect(PG_ADMIN_URL, autocommit=True)

    def fresh(self, tmp_path: Path) -> str:
        if not self._ready:
            with self._admin() as admin:
                admin.execute(f'CREATE DATABASE "{self.name}"')
                # Tests check behaviour, not the disk: commits need not wait
                # for fsync. Locks and visibility are unchanged.
                admin.execute(f'ALTER DATABASE "{self.name}" SET synchronous_commit = off')
            Runtime(test_settings(self.url, tmp_path)).close()
            self._ready = True
        with psycopg.connect(self.url, autocommit=True) as conn:
            tables = [r[0] for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            ).fetchall()]
            if tables:
                conn.execute("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY")
        return self.url

    def drop(self) -> None:
        if self._ready:
            with self._admin() as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[PostgresDatabase]:
    database = PostgresDatabase()
    yield database
    database.drop()


SECRET_KEY = TokenCipher.generate_key()


def test_settings(database_url: str, tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = dict(
        database_url=database_url,
        root_access_token=ROOT_TOKEN,
        secret_key=SECRET_KEY,
        data_dir=str(tmp_path / "data"),
        # A bare deployment: no anonymous role, unless a test asks for one.
        anonymous_role="",
    )
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'cairn.db'}"
        return
    if not POSTGRES_OK:
        if IN_CI:
            pytest.fail("PostgreSQL is not reachable")
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    database: PostgresDatabase = request.getfixturevalue("postgres_database")
    yield database.fresh(tmp_path)


@pytest.fixture
def amqp_url() -> str:
    if not RABBITMQ_OK:
        if IN_CI:
            pytest.fail("RabbitMQ is not reachable")
        pytest.skip("RabbitMQ is not reachable on 127.0.0.1:5672")
    return AMQP_URL


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Override in a test module to change the settings its runtime gets."""
    return {}


@pytest.fixture
def runtime(database_url: str, tmp_path: Path, settings_overrides: dict[str, Any]) -> Iterator[Runtime]:
    # The root URL names the port the live server will listen on, so that
    # URLs Cairn signs for clients (uploads, downloads) point back at it.
    overrides = {"root_url": f"http://127.0.0.1:{free_port()}", **settings_overrides}
    rt = Runtime(test_settings(database_url, tmp_path, **overrides), validate_output=True)
    yield rt
    rt.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """A real uvicorn server on a loopback port, in a thread of this process."""

    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        self.root_url = runtime.settings.root_url
        self.port = int(self.root_url.rsplit(":", 1)[1])
        config = uvicorn.Config(
            create_app(runtime), host="127.0.0.1", port=self.port, log_level="warning", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("server did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)

    def options(self, client_id: str = "static/root", access_token: str = ROOT_TOKEN, **extra: Any) -> dict[str, Any]:
        options: dict[str, Any] = {
            "rootUrl": self.root_url,
            "credentials": {"clientId": client_id, "accessToken": access_token},
            "maxRetries": 0,
        }
        options.update(extra)
        return options

    def client(self, service: str, **credentials: Any) -> Any:
        """An official taskcluster client for ``service``, as root unless told otherwise."""
        import taskcluster

        cls = getattr(taskcluster, service[0].upper() + service[1:])
        return cls(self.options(**credentials))

    def anonymous(self, service: str) -> Any:
        import taskcluster

        cls = getattr(taskcluster, service[0].upper() + service[1:])
        return cls({"rootUrl": self.root_url, "maxRetries": 0})


@pytest.fixture
def server(runtime: Runtime) -> Iterator[LiveServer]:
    live = LiveServer(runtime)
    live.start()
    yield live
    live.stop()
