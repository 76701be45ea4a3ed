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

import httpx
import mohawk
import psycopg

from tests.conftest import ROOT_TOKEN, SECRET_KEY, free_port
from tests.integration.cairn_process import start_server, stop_server

PATH = "/api/auth/v1/scopes/current"


def _signed(root_url: str) -> dict[str, str]:
    """Headers of a request signed for ``root_url``, to send to any server behind that name."""
    credentials = {"id": "static/root", "key": ROOT_TOKEN, "algorithm": "sha256"}
    header = mohawk.Sender(credentials, root_url + PATH, "GET", content="", content_type="").request_header
    return {"Authorization": header, "Host": root_url.removeprefix("http://")}


def _send(port: int, headers: dict[str, str]) -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{port}{PATH}", headers=headers, timeout=10)


def _nonce_rows(database_url: str) -> int:
    if database_url.startswith("sqlite"):
        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as db:
            return db.execute("SELECT count(*) FROM hawk_nonces").fetchone()[0]
    with psycopg.connect(database_url) as db:
        return db.execute("SELECT count(*) FROM hawk_nonces").fetchone()[0]


def _refused_as_replay(response: httpx.Response) -> bool:
    body = response.json()
    return response.status_code == 401 and body["code"] == "AuthenticationFailed" and "nonce" in body["message"]


def test_a_replay_to_another_process_is_refused_and_old_nonces_are_forgotten(database_url, tmp_path):
    if database_url.startswith("sqlite"):
        # One process on SQLite; there the database store is a choice (memory is the default).
        port = free_port()
        server = start_server(database_url, tmp_path, port, hawk_nonce_store="database")
        try:
            headers = _signed(f"http://127.0.0.1:{port}")
            assert _send(port, headers).status_code == 200
            assert _refused_as_replay(_send(port, headers))
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
        assert _send(second, _signed(name)).status_code == 200
        # ...but not the copy of one the first has taken, nor a copy sent back.
        headers = _signed(name)
        assert _send(first, headers).status_code == 200
        assert _refused_as_replay(_send(second, headers))
        assert _refused_as_replay(_send(first, headers))

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
        headers = _signed(name)
        assert _send(first, headers).status_code == 200
        assert _send(second, headers).status_code == 200
        assert _refused_as_replay(_send(first, headers))
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
