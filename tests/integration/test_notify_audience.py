"""A process notifies other processes of its commits only while another process listens (PostgreSQL).

A raw ``LISTEN`` here holds no listener's lock: it hears what Cairn sends
without counting as a listener. A marker sent after a command, on the same
channel, arrives after anything the command's commit sent, so "nothing
before the marker" means the command sent nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import taskcluster

from cairn.consumers.pending_signal import CHANNEL as PENDING
from cairn.projections.store import notify_audience
from cairn.projections.store.notify_audience import Audience, listeners_key
from tests.acceptance.queue_helpers import task_definition
from tests.acceptance.waiting import wait_for

pytestmark = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)


@pytest.fixture
def eavesdropper(database_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        yield conn


def heard_before_a_marker(conn: psycopg.Connection, channels: list[str]) -> list[tuple[str, str]]:
    """Every notification on ``channels`` that arrives before a marker this sends now on each."""
    for channel in channels:
        conn.execute("SELECT pg_notify(%s, 'marker')", (channel,))
    heard: list[tuple[str, str]] = []
    markers = 0
    for note in conn.notifies(timeout=10):
        if note.payload == "marker":
            markers += 1
            if markers == len(channels):
                return heard
        else:
            heard.append((note.channel, note.payload))
    raise AssertionError(f"the markers did not come back; heard {heard}")


def test_a_process_that_listens_alone_notifies_nobody_and_another_listener_is_told(
    server: Any, database_url: str, eavesdropper: psycopg.Connection
) -> None:
    runtime = server.runtime
    log_audience, pending_audience = runtime.log.recorder.audience, runtime.pending_audience
    channels = [runtime.log.recorder.channel_name, PENDING]
    for channel in channels:
        eavesdropper.execute(f'LISTEN "{channel}"')
    token = runtime.log.recorder.notify_token
    queue = server.client("queue")

    wait_for(lambda: not log_audience.others and not pending_audience.others, 10, "the listeners to count themselves")
    queue.createTask(taskcluster.slugId(), task_definition(taskQueueId="cairn-test/audience"))
    assert heard_before_a_marker(eavesdropper, channels) == []

    # Another process starts listening on both channels: within a count or two, it is told.
    with psycopg.connect(database_url, autocommit=True) as other:
        for channel in channels:
            other.execute("SELECT pg_advisory_lock_shared(%s)", (listeners_key(channel),))
        wait_for(lambda: log_audience.others and pending_audience.others, 10, "the other listener to be counted")
        queue.createTask(taskcluster.slugId(), task_definition(taskQueueId="cairn-test/audience"))
        heard = heard_before_a_marker(eavesdropper, channels)
        assert (channels[0], token) in heard
        assert (PENDING, f"{token} cairn-test/audience") in heard

    # It is gone (its connection closed): nobody is told again.
    wait_for(lambda: not log_audience.others and not pending_audience.others, 10, "the other listener to be gone")
    queue.createTask(taskcluster.slugId(), task_definition(taskQueueId="cairn-test/audience"))
    assert heard_before_a_marker(eavesdropper, channels) == []


def test_an_audience_counts_the_listeners_of_its_channel_but_itself(database_url: str, monkeypatch) -> None:
    monkeypatch.setattr(notify_audience, "LOOK_AGAIN", 0.0)
    channel = f"cairn_test_{taskcluster.slugId().lower().replace('-', '_')}"
    first, second, elsewhere = Audience(channel), Audience(channel), Audience(channel + "_other")
    assert first.others  # not counted yet: it may have an audience
    with psycopg.connect(database_url, autocommit=True) as a, psycopg.connect(database_url, autocommit=True) as b:
        first.listening(a)
        assert not first.others
        elsewhere.listening(b)  # another channel's listener is nobody to this one
        first.look(a)
        assert not first.others and not elsewhere.others
        second.listening(b)
        first.look(a)
        assert first.others and second.others
    first.stopped_listening()
    second.stopped_listening()
    with psycopg.connect(database_url, autocommit=True) as c:
        first.listening(c)  # the others' connections are closed, their locks gone
        assert not first.others
        first.stopped_listening()
        assert first.others  # not listening: it cannot know who does
