"""A batch that asks nothing of its consumer costs no statement of its own (SQLite and PostgreSQL).

An at-least-once consumer that did nothing for a batch says so (its
``handle`` returns False): the follower then moves its position in
memory and writes it down now and then, as it does over events of other
topics, instead of a position write per batch. The hook listener, while
no hook is bound, and the task notifier, for tasks without ``notify.*``
routes, are such consumers; the hook listener also reads the bound hooks
again only when a hook's definition changes.
"""

from __future__ import annotations

import types
from typing import Any

from cairn.consumers.dead_letters import dead_letters
from cairn.consumers.hook_listener import HookListener
from cairn.consumers.log_follower import LogFollower, read_position
from cairn.consumers.log_reader import LogReader
from cairn.domain.aggregate import acting_as
from cairn.domain.timestamps import utcnow
from tests.acceptance.hooks_helpers import hook_definition
from tests.consumers.poisoning import run_tasks, undecodable

TASK_DEFINED = "exchange/taskcluster-queue/v1/task-defined"
OBJECT = {"triggerSchema": {"type": "object"}}


class Answering:
    """An at-least-once consumer of every event that answers each batch with ``self.answer``."""

    guarantee = "at-least-once"
    topics: tuple[str, ...] = ()

    def __init__(self, name: str, answer: bool | None):
        self.name = name
        self.answer = answer
        self.seen: list[int] = []

    def handle(self, session: Any, batch: list[Any]) -> bool | None:
        self.seen.extend(logged.position for logged in batch)
        return self.answer


def drain(follower: LogFollower) -> None:
    while follower.step() > 0:
        pass


def head(runtime: Any) -> int:
    return runtime.log.recorder.max_notification_id() or 0


class Clock:
    """``time.monotonic`` for the follower's module, moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


def test_a_batch_that_asked_nothing_moves_the_position_in_memory_and_writes_it_now_and_then(runtime, monkeypatch):
    clock = Clock()
    monkeypatch.setattr("cairn.consumers.log_follower.time", types.SimpleNamespace(monotonic=clock.monotonic))
    quiet = Answering("tests-quiet", False)
    follower = LogFollower(runtime.log, runtime.log_signal, quiet, reader=runtime.log_reader)
    store = runtime.log.store

    run_tasks(runtime, 2)
    first = head(runtime)
    assert follower.step() > 0
    assert quiet.seen[-1] == first
    # Moved over in memory, so not handed over again; the recorded position is
    # written at the first batch (nothing was written before), not at each.
    assert follower.positions.read() == first
    assert read_position(store, "tests-quiet") == first

    run_tasks(runtime, 2)
    second = head(runtime)
    follower.step()
    assert quiet.seen[-1] == second and len(quiet.seen) == len(set(quiet.seen))
    assert follower.step() == 0  # nothing handed over twice
    assert read_position(store, "tests-quiet") == first

    clock.now += 6  # written down at least every five seconds
    run_tasks(runtime, 1)
    follower.step()
    assert read_position(store, "tests-quiet") == head(runtime)

    # A batch that did something (or does not say) is recorded at once, as before.
    quiet.answer = None
    run_tasks(runtime, 1)
    follower.step()
    assert read_position(store, "tests-quiet") == head(runtime)


def test_the_hook_listener_reads_the_bound_hooks_again_only_when_a_hook_changes(runtime, monkeypatch):
    parts = runtime.hooks_and_secrets
    reads = parts.hook_reads
    with_bindings = reads.with_bindings
    read_count = []

    def counted() -> list[dict[str, Any]]:
        read_count.append(1)
        return with_bindings()

    monkeypatch.setattr(reads, "with_bindings", counted)
    listener = HookListener(runtime.log, reads, parts.firing)
    reader = LogReader(runtime.log, runtime.log_signal)  # its own: no other follower decodes for it
    follower = LogFollower(runtime.log, runtime.log_signal, listener, reader=reader)
    run_tasks(runtime, 1)
    drain(follower)
    assert len(read_count) == 1

    decoded = []
    to_domain_event = runtime.log.mapper.to_domain_event
    monkeypatch.setattr(runtime.log.mapper, "to_domain_event", lambda n: decoded.append(n) or to_domain_event(n))
    for _ in range(3):
        run_tasks(runtime, 2)
        drain(follower)
    assert len(read_count) == 1  # nothing bound, and no hook changed since
    assert decoded == []  # nor decoded: it follows hooks' definitions only
    assert follower.positions.read() == head(runtime)
    assert read_position(runtime.log.store, "hook-listener") < head(runtime)  # not written at every batch

    # In one batch: a hook bound, a task it is bound to, another hook changed.
    binding = {"exchange": TASK_DEFINED, "routingKeyPattern": "route.builds.#"}
    with acting_as("tests"):
        parts.hooks.create("tests-quiet", "other", hook_definition(), utcnow())
        parts.hooks.create("tests-quiet", "on-build", hook_definition(bindings=[binding], **OBJECT), utcnow())
    run_tasks(runtime, 1, routes=["builds.linux"])
    with acting_as("tests"):
        parts.hooks.update("tests-quiet", "other", hook_definition(description="changed"), utcnow())
    drain(follower)
    # Read again when the definitions arrived, and once more when the batch was
    # taken again with every topic, to reach the task between them.
    assert len(read_count) == 3
    fires = reads.fires("tests-quiet", "on-build", 0, 10)
    assert [f["fired_by"] for f in fires] == ["pulseMessage"], fires

    run_tasks(runtime, 1, routes=["builds.mac"])
    drain(follower)
    assert len(reads.fires("tests-quiet", "on-build", 0, 10)) == 2
    with acting_as("tests"):
        parts.hooks.update("tests-quiet", "on-build", hook_definition(bindings=[], **OBJECT), utcnow())
    run_tasks(runtime, 1, routes=["builds.linux"])
    drain(follower)
    assert len(read_count) == 4
    assert len(reads.fires("tests-quiet", "on-build", 0, 10)) == 2  # unbound: no third fire


def test_the_task_notifier_records_its_position_at_once_only_after_a_batch_that_asked_for_notifications(runtime):
    follower = runtime.notify.make_notifier()
    store = runtime.log.store
    run_tasks(runtime, 1)
    drain(follower)  # the first batch is written down: nothing was before
    written = read_position(store, "task-notifier")
    run_tasks(runtime, 2)
    drain(follower)
    assert follower.positions.read() == head(runtime)
    assert read_position(store, "task-notifier") == written  # no route asked for anything

    (task_id,) = run_tasks(runtime, 1, routes=["notify.pulse.tests-quiet.on-completed"])
    follower.step()
    assert read_position(store, "task-notifier") > written  # recorded with the batch that asked
    assert len(runtime.notify.reads.of_task(task_id)) == 1


def test_an_event_that_cannot_be_decoded_between_a_binding_and_its_task_is_set_aside_and_the_task_fires(
    runtime, monkeypatch
):
    parts = runtime.hooks_and_secrets
    listener = HookListener(runtime.log, parts.hook_reads, parts.firing)
    follower = LogFollower(runtime.log, runtime.log_signal, listener, reader=LogReader(runtime.log, runtime.log_signal))
    run_tasks(runtime, 1)
    drain(follower)
    assert listener.topics != ()  # nothing bound: hooks' definitions only

    binding = {"exchange": TASK_DEFINED, "routingKeyPattern": "route.builds.#"}
    with acting_as("tests"):
        parts.hooks.create("tests-quiet", "on-build", hook_definition(bindings=[binding], **OBJECT), utcnow())
    run_tasks(runtime, 1)  # one of its events is made undecodable below
    bad = head(runtime) - 3
    run_tasks(runtime, 1, routes=["builds.linux"])
    with acting_as("tests"):
        parts.hooks.create("tests-quiet", "other", hook_definition(), utcnow())
    undecodable(runtime, monkeypatch, bad)
    drain(follower)

    assert [(d.position, d.attempts) for d in dead_letters(runtime.store, "hook-listener")] == [(bad, 1)]
    fires = parts.hook_reads.fires("tests-quiet", "on-build", 0, 10)
    assert [f["fired_by"] for f in fires] == ["pulseMessage"], fires
    assert follower.positions.read() == head(runtime)
