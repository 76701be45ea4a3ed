"""Hawk nonces shared through the database: a replay is refused whichever server process it reaches.

Servers behind one name (a load balancer, or ``cairn serve --workers N``)
see the same Host, so a request signed for one verifies at any of them; only
a nonce every process knows stops its copy.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time

import psycopg

from tests.conftest import SECRET_KEY, free_port
from tests.integration.cairn_process import start_server, stop_server
from tests.integration.signed_requests import Signed, refused_as_replay

PATH = "/api/auth/v1/scopes/current"


def _nonce_rows(database_url: str) -> int:
    if database_url.startswith("sqlite"):
        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as db:
            return db.execute("SELECT count(*) FROM hawk_nonces").fetchone()[0]
    with psycopg.connect(database_url) as db:
        return db.execute("SELECT count(*) FROM hawk_nonces").fetchone()[0]


def test_a_replay_to_another_process_is_refused_and_old_nonces_are_forgotten(database_url, tmp_path):
    if database_url.startswith("sqlite"):
        # One process on SQLite; there the database store is a choice (memory is the default).
        port = free_port()
        server = start_server(database_url, tmp_path, port, hawk_nonce_store="database")
        try:
            request = Signed(f"http://127.0.0.1:{port}", "GET", PATH)
            assert request.to(port).status_code == 200
            assert refused_as_replay(request.to(port))
            assert _nonce_rows(database_url) >= 1
        finally:
            stop_server(server)
        return

    first, second = free_port(), free_port()
    name = f"http://127.0.0.1:{first}"  # the one name both servers answer to
    servers = [start_server(database_url, tmp_path / f"s{n}", port, root_url=name)
               for n, port in enumerate((first, second))]
    try:
        # The second server takes a request signed for the shared name...
        assert Signed(name, "GET", PATH).to(second).status_code == 200
        # ...but not the copy of one the first has taken, nor a copy sent back.
        request = Signed(name, "GET", PATH)
        assert request.to(first).status_code == 200
        assert refused_as_replay(request.to(second))
        assert refused_as_replay(request.to(first))

        # The reaper forgets nonces past their replay window, and only those.
        with psycopg.connect(database_url, autocommit=True) as db:
            recorded = db.execute("SELECT count(*) FROM hawk_nonces").fetchone()[0]
            db.execute("INSERT INTO hawk_nonces (key, expires) VALUES (%s, %s)", (b"stale", time.time() - 1))
        give_up = time.monotonic() + 10
        while _nonce_rows(database_url) > recorded and time.monotonic() < give_up:
            time.sleep(0.1)
        assert _nonce_rows(database_url) == recorded == 2
    finally:
        for server in servers:
            stop_server(server)

    # Kept per process (the memory store), the copy passes at the other server:
    # what the shared store is for.
    servers = [start_server(database_url, tmp_path / f"m{n}", port, root_url=name, hawk_nonce_store="memory")
               for n, port in enumerate((first, second))]
    try:
        request = Signed(name, "GET", PATH)
        assert request.to(first).status_code == 200
        assert request.to(second).status_code == 200
        assert refused_as_replay(request.to(first))
    finally:
        for server in servers:
            stop_server(server)


def test_an_unknown_nonce_store_is_refused_at_start(tmp_path):
    env = dict(os.environ, CAIRN_DATABASE_URL=f"sqlite:///{tmp_path / 'cairn.db'}", CAIRN_SECRET_KEY=SECRET_KEY,
               CAIRN_DATA_DIR=str(tmp_path), CAIRN_HAWK_NONCE_STORE="disk")
    done = subprocess.run([sys.executable, "-m", "cairn.cli", "serve", "--port", str(free_port())],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "CAIRN_HAWK_NONCE_STORE must be 'database' or 'memory', not 'disk'" in done.stderr
