"""claimWork's wake-ups on PostgreSQL: a process hears other processes' pending work, and passes over its own.

A process's queue views wake its own waiters at the commit; the notification
the same commit sends is for the other processes. Its own listener hearing
it woke the same waiters a second time, for nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
import slugid

from cairn.consumers.pending_signal import PendingSignal
from cairn.domain.aggregate import acting_as
from cairn.domain.timestamps import iso
from cairn.runtime import Runtime
from tests.conftest import IN_CI, POSTGRES_OK, PostgresDatabase
from tests.conftest import test_settings as settings_for


@pytest.fixture
def pg_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if not POSTGRES_OK:
        if IN_CI:
            pytest.fail("PostgreSQL is not reachable")
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    database: PostgresDatabase = request.getfixturevalue("postgres_database")
    yield database.fresh(tmp_path)


async def _until(check, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def test_a_listener_passes_over_its_own_process_notifications(pg_url: str) -> None:
    queue, marker = "cairn-test/pending-own", "cairn-test/pending-marker"

    async def scenario() -> None:
        pending = PendingSignal()
        pending.attach(asyncio.get_running_loop())
        pending.listen(pg_url, own="process-a")
        try:
            with psycopg.connect(pg_url, autocommit=True) as conn:
                def send(payload: str) -> None:
                    conn.execute("SELECT pg_notify('cairn_pending', %s)", (payload,))

                # Heard once it listens (a marker moves), before anything counted is sent.
                await _until(lambda: (send(f"process-b {marker}"), pending.generation(marker) > 0)[1], 10,
                             "the listener to connect")
                seen, marker_seen = pending.generation(queue), pending.generation(marker)
                send(f"process-a {queue}")  # its own: passed over
                send(f"process-b {queue}")  # another process's
                send(queue)  # a bare task queue: another process's too
                send(f"process-a {queue}")
                send(f"process-b {marker}")  # after the rest: once heard, so are they
                await _until(lambda: pending.generation(marker) > marker_seen, 10, "the last notification")
                assert pending.generation(queue) - seen == 2
        finally:
            pending.stop()

    asyncio.run(scenario())


def test_the_queue_views_sign_their_notifications_with_the_process_token(pg_url: str, tmp_path: Path) -> None:
    runtime = Runtime(settings_for(pg_url, tmp_path))
    try:
        token = runtime.log.recorder.notify_token
        assert token and " " not in token
        now = datetime.now(UTC)
        definition = {
            "taskQueueId": "cairn-test/signed",
            "created": iso(now),
            "deadline": iso(now + timedelta(days=1)),
            "payload": {},
            "metadata": {"name": "n", "description": "d", "owner": "o@example.com", "source": "https://example.com"},
        }
        with psycopg.connect(pg_url, autocommit=True) as listener:
            listener.execute("LISTEN cairn_pending")
            with acting_as("static/root"):
                runtime.queue.define_task(slugid.nice(), definition, now)
            heard = [n.payload for n in listener.notifies(timeout=5, stop_after=1)]
        assert heard == [f"{token} cairn-test/signed"]
    finally:
        runtime.close()
