"""Aggregates cached by version, with two server processes on one database (SQLite and PostgreSQL).

Each runtime keeps its own cache, as a server process does. What one of
them committed must decide the other's next command, whatever the other
has cached: ``projections/store/aggregate_cache.py`` says why.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from eventsourcing.persistence import IntegrityError

from cairn.domain.aggregate import acting_as
from cairn.domain.errors import Conflict
from cairn.domain.queue.task import task_key
from cairn.domain.timestamps import utcnow
from cairn.projections.store.aggregate_cache import detached
from cairn.runtime import Runtime
from tests.conftest import test_settings as settings_for
from tests.domain.queue.stories import QUEUE, body

TASK = "cachedtask000000000000"


@pytest.fixture
def two(database_url: str, tmp_path: Path) -> Iterator[tuple[Runtime, Runtime]]:
    first = Runtime(settings_for(database_url, tmp_path / "a"))
    second = Runtime(settings_for(database_url, tmp_path / "b"))
    with acting_as("tests/cache"):
        yield first, second
    first.close()
    second.close()


def claimed_in(a: Runtime) -> None:
    now = utcnow()
    a.queue.define_task(TASK, body(now), now)
    [claim] = a.queue.claim_work(QUEUE, "group", "w1", 1, now)
    assert claim.task.task_id == TASK
    assert a.log.cache.version(task_key(TASK)) == 3  # Defined, RunPending, RunClaimed


def test_a_command_decides_on_what_another_process_committed_not_on_its_cached_copy(two):
    a, b = two
    claimed_in(a)
    b.queue.report(TASK, 0, "failed", "failed", utcnow())
    # a's copy says running: the version beside the locked row (4) says otherwise
    with pytest.raises(Conflict, match="is failed, not running"):
        a.queue.report(TASK, 0, "completed", "completed", utcnow())
    # and without a version at hand, the events after the copy's are read
    assert a.queue.task(TASK).state == "failed"
    with pytest.raises(Conflict, match="can no longer be reclaimed"):
        a.queue.reclaim(TASK, 0, utcnow())
    assert [e.run_id for e in a.log.events.get(task_key(TASK)) if type(e).__name__ == "RunResolved"] == [0]


def test_a_stale_decision_loses_at_the_write_and_is_decided_again_on_what_was_read_afresh(two, monkeypatch):
    a, b = two
    claimed_in(a)
    b.queue.report(TASK, 0, "failed", "failed", utcnow())
    # As if b's commit landed after a's decision read: the first read hands a
    # the stale version, so the stale copy decides, and the save must fail.
    lock, calls = a.queue_reads.lock_task_to_resolve, []

    def stale_first(task_id: str, completed: bool) -> tuple[int | None, Any]:
        calls.append(task_id)
        version, resolution = lock(task_id, completed)
        return (3 if len(calls) == 1 else version), resolution

    monkeypatch.setattr(a.queue_reads, "lock_task_to_resolve", stale_first)
    with pytest.raises(Conflict, match="is failed, not running"):
        a.queue.report(TASK, 0, "completed", "completed", utcnow())
    assert len(calls) == 2  # decided twice: the retry read the log again
    states = [e.state for e in a.log.events.get(task_key(TASK)) if type(e).__name__ == "RunResolved"]
    assert states == ["failed"]


def test_a_worker_quarantined_by_another_process_claims_nothing_there(two):
    a, b = two
    now = utcnow()
    claimed_in(a)
    b.workers.quarantine(QUEUE, "group", "w1", now + timedelta(hours=1), "flaky")
    a.queue.define_task("second000000000000000a", body(now), now)
    assert a.queue.claim_work(QUEUE, "group", "w1", 1, now) == []
    b.workers.quarantine(QUEUE, "group", "w1", now, "lifted")
    assert [c.task.task_id for c in a.queue.claim_work(QUEUE, "group", "w1", 1, now)] == ["second000000000000000a"]


def test_a_change_that_is_not_committed_never_reaches_the_cache(two):
    a, _ = two
    claimed_in(a)
    key = task_key(TASK)
    a.log.get(key).reclaim(0, utcnow(), 60)  # changed, never saved
    assert a.log.get(key).runs[0].get("takenUntil") == a.log.get(key, 3).runs[0]["takenUntil"]

    def saved_then_failed() -> None:
        task = a.queue.task(TASK)
        task.report(0, "completed", "completed", utcnow())
        a.log.save(task)
        raise RuntimeError("rolled back after the save")

    with pytest.raises(RuntimeError):
        a.log.command(saved_then_failed)
    assert a.log.cache.version(key) == 3
    assert a.queue.task(TASK).state == "running"
    assert a.log.get(key, 3).state == "running"


def test_two_processes_saving_one_version_conflict_on_the_log_key(two):
    a, b = two
    claimed_in(a)
    stale = b.log.get(task_key(TASK))  # b reads version 3 ...
    a.queue.report(TASK, 0, "completed", "completed", utcnow())  # ... a commits version 4
    stale.report(0, "failed", "failed", utcnow())
    with pytest.raises(IntegrityError):
        b.log.save(stale)
    assert b.log.cache.version(task_key(TASK)) is None
    assert b.queue.task(TASK).state == "completed"


# How an entry is copied (``detached``)


class Holder:
    """An object with the kinds of attribute an aggregate holds."""

    unchanged_in_place = frozenset({"fixed"})


class Box:
    def __init__(self, items: list[int]):
        self.items = items


def holder() -> Holder:
    h = Holder()
    shared = [{"state": "pending"}]
    h.runs = shared
    h.latest = shared  # two references to one list
    h.by_key = {("a", 1): {"n": 1}}
    h.tags = {"x"}
    h.pair = ([1], "two")
    h.box = Box([1])
    h.when = utcnow()
    h.fixed = {"deadline": "soon", "scopes": ["a"]}
    return h


def test_a_copy_shares_nothing_that_changes_in_place_and_keeps_its_shape():
    original = holder()
    twin = detached(original)
    assert type(twin) is Holder and twin.__dict__ == original.__dict__ | {"box": twin.box}
    twin.runs[0]["state"] = "running"
    twin.runs.append({"state": "pending"})
    twin.by_key[("a", 1)]["n"] = 2
    twin.tags.add("y")
    twin.pair[0].append(2)
    twin.box.items.append(2)
    assert original.runs == [{"state": "pending"}] and original.by_key == {("a", 1): {"n": 1}}
    assert original.tags == {"x"} and original.pair == ([1], "two") and original.box.items == [1]
    assert twin.latest is twin.runs  # one list in the original, one in the copy
    assert twin.when is original.when  # immutable: shared
    assert twin.fixed is original.fixed  # named in unchanged_in_place: shared


def test_a_cached_task_stays_as_it_was_saved_whatever_its_loaded_copies_go_through(database_url, tmp_path):
    runtime = Runtime(settings_for(database_url, tmp_path))
    try:
        with acting_as("tests/cache"):
            now = utcnow()
            runtime.queue.define_task(TASK, body(now, retries=1), now)
            key = task_key(TASK)
            definition = orjson.dumps(runtime.log.get(key).definition)
            runtime.queue.change_priority(TASK, "high")
            runtime.queue.claim_work(QUEUE, "group", "w1", 1, now)
            runtime.queue.reclaim(TASK, 0, now)
            runtime.queue.report(TASK, 0, "failed", "failed", now)
            runtime.queue.rerun_task(TASK, now)
            saved = runtime.log.cache.version(key), orjson.dumps(runtime.log.get(key).__dict__, default=repr)
            loaded = runtime.log.get(key)
            loaded.cancel(utcnow())  # changed, never saved
            loaded.runs[-1]["state"] = "changed in place"
            assert runtime.log.cache.version(key) == saved[0]
            assert orjson.dumps(runtime.log.get(key).__dict__, default=repr) == saved[1]
            # a task's definition, shared by its copies, is never edited by its commands
            assert orjson.dumps(runtime.log.get(key).definition) == definition
            assert runtime.log.get(key).priority == "high"
    finally:
        runtime.close()
