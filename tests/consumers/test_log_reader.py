"""The followers of one process read each range of the log once, and decode each event once, between them.

Each still sees every event of its topics once and in log order, under
concurrent writers; a follower acting on a commit's signal never trusts a
read that began before the commit; an event that cannot be decoded is set
aside by each consumer that reads its topic.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest
import taskcluster

from cairn.consumers.dead_letters import dead_letters
from cairn.consumers.log_follower import LogFollower
from cairn.consumers.log_reader import LogReader
from cairn.domain.aggregate import acting_as
from cairn.domain.queue.task import Task
from cairn.domain.timestamps import utcnow
from cairn.projections.store.moved_topics import topics_of
from tests.consumers.poisoning import eventually, run_tasks
from tests.domain.queue.stories import body

WRITERS = 4
TASKS_EACH = 25


class Recording:
    """A consumer that keeps the positions it was handed, and the events."""

    guarantee = "at-least-once"

    def __init__(self, name: str, topics: tuple[str, ...] = ()):
        self.name = name
        self.topics = topics
        self.positions: list[int] = []
        self.events: list[Any] = []

    def handle(self, session: Any, batch: list[Any]) -> None:
        self.positions.extend(logged.position for logged in batch)
        self.events.extend(logged.event for logged in batch)


def consumers() -> list[Recording]:
    return [
        Recording("all"),
        Recording("defined", topics_of([Task.Defined])),
        Recording("pending", topics_of([Task.RunPending])),
        Recording("both", topics_of([Task.Defined, Task.RunPending])),
    ]


def logged_of(runtime: Any, topics: tuple[str, ...] = ()) -> list[int]:
    everything = runtime.log.recorder.select_notifications(start=1, limit=1_000_000)
    return [n.id for n in everything if not topics or n.topic in topics]


def counted(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> Counter:
    """Counts calls of ``owner.name`` by their first argument's ``id`` (or None)."""
    calls: Counter = Counter()
    original = getattr(owner, name)

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls[getattr(args[0], "id", None) if args else None] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, counting)
    return calls


def define_tasks(runtime: Any, count: int) -> None:
    with acting_as("tests/log-reader"):
        for _ in range(count):
            now = utcnow()
            runtime.queue.define_task(taskcluster.slugId(), body(now), now)


@pytest.mark.parametrize("window", [{}, {"capacity": 40, "read_size": 16}], ids=["default", "small-window"])
def test_followers_with_different_topics_each_see_theirs_once_in_order_under_concurrent_writers(runtime, window):
    reader = LogReader(runtime.log, runtime.log_signal, **window)
    recordings = consumers()
    followers = [
        LogFollower(runtime.log, runtime.log_signal, r, reader=reader, batch_size=size)
        for r, size in zip(recordings, [1000, 7, 1000, 50], strict=True)
    ]
    errors: list[BaseException] = []

    def write() -> None:
        try:
            define_tasks(runtime, TASKS_EACH)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    writers = [threading.Thread(target=write) for _ in range(WRITERS)]
    for follower in followers:
        follower.start()
    try:
        for thread in writers:
            thread.start()
        for thread in writers:
            thread.join()
        assert not errors, errors
        expected = {r.name: logged_of(runtime, r.topics) for r in recordings}
        assert len(expected["all"]) >= WRITERS * TASKS_EACH * 2
        for r in recordings:
            eventually(lambda r=r: r.positions[-1:] == expected[r.name][-1:], what=f"follower {r.name}")
    finally:
        for follower in followers:
            follower.stop()
    for r in recordings:
        assert r.positions == expected[r.name]  # none skipped, none twice, in position order


def test_followers_of_one_process_read_and_decode_each_range_once(runtime, monkeypatch):
    run_tasks(runtime, 5)
    recordings = consumers()
    followers = [LogFollower(runtime.log, runtime.log_signal, r, reader=runtime.log_reader) for r in recordings]
    reads = counted(monkeypatch, runtime.log.recorder, "select_notifications")
    decoded = counted(monkeypatch, runtime.log.mapper, "to_domain_event")

    generation = runtime.log_signal.generation  # the commits' signal, as a woken follower acts on it
    for follower in followers:
        follower.step(generation)

    assert sum(reads.values()) == 1
    everything = logged_of(runtime)
    assert recordings[0].positions == everything
    for r in recordings[1:]:
        assert r.positions == logged_of(runtime, r.topics)
    assert sorted(decoded) == everything and set(decoded.values()) == {1}
    # One decoding: the followers hold the same event objects.
    by_position = dict(zip(recordings[0].positions, recordings[0].events, strict=True))
    assert all(e is by_position[p] for r in recordings[1:] for p, e in zip(r.positions, r.events, strict=True))


def test_a_follower_never_trusts_a_read_that_began_before_the_commit_it_acts_on(runtime, monkeypatch):
    run_tasks(runtime, 1)
    first, second = Recording("first"), Recording("second")
    reader = LogReader(runtime.log, runtime.log_signal)
    followers = [LogFollower(runtime.log, runtime.log_signal, r, reader=reader) for r in (first, second)]
    select = runtime.log.recorder.select_notifications
    reads: list[int] = []

    def read_then_commit(*args: Any, **kwargs: Any) -> Any:
        found = select(*args, **kwargs)
        if not reads:
            # A commit lands, and is signalled, after the read saw the log
            # but before what it saw is kept for the others.
            define_tasks(runtime, 1)
        reads.append(len(found))
        return found

    monkeypatch.setattr(runtime.log.recorder, "select_notifications", read_then_commit)
    followers[0].step(runtime.log_signal.generation)
    (seen,) = reads
    monkeypatch.setattr(runtime.log.recorder, "select_notifications", select)
    everything = logged_of(runtime)
    assert first.positions == everything[:seen] and len(everything) > seen

    followers[1].step(runtime.log_signal.generation)  # acts on the commit's signal
    assert second.positions == everything  # the task defined meanwhile, too
    assert reader.reads == 2

    # The first, acting on no signal (as after a lost notification), reads what is committed.
    followers[0].step()
    assert first.positions == everything
    assert reader.reads == 3


def test_an_event_that_cannot_be_decoded_is_set_aside_by_each_consumer_of_its_topic(runtime, monkeypatch):
    run_tasks(runtime, 3)
    defined = logged_of(runtime, topics_of([Task.Defined]))
    bad = defined[1]
    to_domain_event = runtime.log.mapper.to_domain_event
    attempts: list[int] = []

    def decode(notification: Any) -> Any:
        if notification.id == bad:
            attempts.append(bad)
            raise KeyError("no event class for this topic")
        return to_domain_event(notification)

    monkeypatch.setattr(runtime.log.mapper, "to_domain_event", decode)
    recordings = consumers()
    followers = [LogFollower(runtime.log, runtime.log_signal, r, reader=runtime.log_reader) for r in recordings]
    for follower in followers:
        follower.catch_up()

    head = runtime.log.recorder.max_notification_id()
    for r, follower in zip(recordings, followers, strict=True):
        letters = dead_letters(runtime.store, r.name)
        if r.name == "pending":
            assert letters == [] and r.positions == logged_of(runtime, r.topics)
        else:
            assert [(d.position, d.attempts) for d in letters] == [(bad, 1)]
            assert letters[0].reason.startswith("KeyError")
            assert r.positions == [p for p in logged_of(runtime, r.topics) if p != bad]
        assert follower.positions.read() == head
    assert attempts == [bad]  # decoded once, set aside by each


def test_the_window_keeps_the_newest_events_and_a_window_read_earlier_keeps_what_it_held(runtime):
    reader = LogReader(runtime.log, runtime.log_signal, capacity=40, read_size=16)
    follower = LogFollower(runtime.log, runtime.log_signal, Recording("all"), reader=reader)
    earlier: list[tuple[Any, list[int]]] = []
    for round_ in range(30):
        define_tasks(runtime, 1 + round_ % 7)  # two events each
        follower.step(runtime.log_signal.generation)
        window = reader._window
        held = [e.position for e in window.held()]
        logged = logged_of(runtime)
        assert held == logged[-len(held):] and held[-1] == window.high == logged[-1]
        assert held == window.positions[window.start:window.stop]
        assert len(held) == min(40, len(logged))
        assert window.low == (logged[-len(held) - 1] if len(logged) > len(held) else 0)
        assert window.after(held[len(held) // 2]) == window.held()[len(held) // 2 + 1:]
        # What fell out is let go: the lists hold at most a quarter more than the window, and a read.
        assert len(window.entries) == len(window.positions) <= 40 + 40 // 4 + 16
        earlier.append((window, held))
    assert follower.consumer.positions == logged_of(runtime)
    for window, held in earlier:  # extended past, never changed
        assert [e.position for e in window.held()] == held
