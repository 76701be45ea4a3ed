"""claimWork's wake-ups on PostgreSQL: a process hears other processes' pending work, and passes over its own.

A process's queue views wake its own waiters at the commit; the notification
the same commit sends is for the other processes. Its own listener hearing
it woke the same waiters a second time, for nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
import slugid

from cairn.consumers.pending_signal import PendingSignal
from cairn.domain.aggregate import acting_as
from cairn.domain.timestamps import iso
from tests.acceptance.waiting import wait_for

pytestmark = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)


def test_a_listener_passes_over_its_own_process_notifications(database_url: str) -> None:
    queue, marker = "cairn-test/pending-own", "cairn-test/pending-marker"
    pending = PendingSignal()
    pending.listen(database_url, own="process-a")
    try:
        with psycopg.connect(database_url, autocommit=True) as conn:
            def send(payload: str) -> None:
                conn.execute("SELECT pg_notify('cairn_pending', %s)", (payload,))

            def heard_a_marker() -> bool:
                send(f"process-b {marker}")
                return pending.generation(marker) > 0

            # Heard once it listens (a marker moves), before anything counted is sent.
            wait_for(heard_a_marker, 10, "the listener to connect")
            seen, marker_seen = pending.generation(queue), pending.generation(marker)
            send(f"process-a {queue}")  # its own: passed over
            send(f"process-b {queue}")  # another process's
            send(queue)  # a bare task queue: another process's too
            send(f"process-a {queue}")
            send(f"process-b {marker}")  # after the rest: once heard, so are they
            wait_for(lambda: pending.generation(marker) > marker_seen, 10, "the last notification")
            assert pending.generation(queue) - seen == 2
    finally:
        pending.stop()


def test_the_queue_views_sign_their_notifications_with_the_process_token(runtime: Any, database_url: str) -> None:
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
    with psycopg.connect(database_url, autocommit=True) as listener:
        listener.execute("LISTEN cairn_pending")
        with acting_as("static/root"):
            runtime.queue.define_task(slugid.nice(), definition, now)
        heard = [n.payload for n in listener.notifies(timeout=5, stop_after=1)]
    assert heard == [f"{token} cairn-test/signed"]
