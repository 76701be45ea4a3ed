"""The worker's cache pool: kept between tasks, never shared, purged by name and time, saved across restarts."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from cairn.domain.timestamps import utcnow
from cairn.worker.caches import CacheStore


def fill(store: CacheStore, cache, text: str) -> None:
    location = store.location(cache)
    location.mkdir(parents=True, exist_ok=True)
    (location / "note").write_text(text)


def test_nothing_is_written_until_a_cache_is_used(tmp_path: Path):
    store = CacheStore(tmp_path / "caches")
    assert store.purge("anything", utcnow()) == 0
    assert not (tmp_path / "caches").exists()


def test_a_cache_given_back_is_taken_again_and_survives_a_restart(tmp_path: Path):
    store = CacheStore(tmp_path / "caches")
    cache, new = store.take("build")
    assert new
    fill(store, cache, "first")
    assert store.give_back(cache, kept=True) == "kept for the next task"

    again, new = CacheStore(tmp_path / "caches").take("build")
    assert not new
    assert (CacheStore(tmp_path / "caches").location(again) / "note").read_text() == "first"


def test_a_held_cache_is_never_given_to_another_task(tmp_path: Path):
    store = CacheStore(tmp_path / "caches", capacity=2)
    first, _ = store.take("build")
    fill(store, first, "one")
    store.give_back(first, kept=True)
    held, new = store.take("build")
    assert (held, new) == (first, False)
    other, new = store.take("build")
    assert new and other is not held
    fill(store, other, "two")
    store.give_back(other, kept=True)
    store.give_back(held, kept=True)
    # Both kept (capacity 2), the most recently given back first.
    assert store.take("build")[0] is held


def test_idle_caches_beyond_capacity_are_deleted_least_recently_used_first(tmp_path: Path):
    store = CacheStore(tmp_path / "caches", capacity=1)
    a, _ = store.take("build")
    b, _ = store.take("build")
    for cache, text in ((a, "a"), (b, "b")):
        fill(store, cache, text)
    store.give_back(a, kept=True)
    store.give_back(b, kept=True)
    assert not store.location(a).exists()
    assert store.take("build")[0] is b


def test_a_purge_deletes_caches_made_before_it_and_a_held_one_when_given_back(tmp_path: Path):
    store = CacheStore(tmp_path / "caches", capacity=2)
    idle, _ = store.take("build")
    held, _ = store.take("build")
    other, _ = store.take("other")
    for cache in (idle, held, other):
        fill(store, cache, cache.name)
    store.give_back(idle, kept=True)
    store.give_back(other, kept=True)
    assert store.purge("build", utcnow() + timedelta(seconds=1)) == 2
    assert not store.location(idle).exists()
    assert store.location(held).exists()  # held by a task: deleted when it is given back
    assert store.give_back(held, kept=True).startswith("purged, as a purge request asked")
    assert not store.location(held).exists()
    assert store.take("build")[1] is True  # nothing of the name is left
    assert store.location(other).exists()
    assert store.names() == ["build", "other"]


def test_a_purge_spares_caches_made_well_after_it(tmp_path: Path):
    store = CacheStore(tmp_path / "caches")
    cache, _ = store.take("build")
    fill(store, cache, "new")
    store.give_back(cache, kept=True)
    assert store.purge("build", utcnow() - timedelta(minutes=10)) == 0
    assert store.location(cache).exists()


def test_a_restart_forgets_directories_left_by_a_worker_stopped_mid_task(tmp_path: Path):
    store = CacheStore(tmp_path / "caches")
    cache, _ = store.take("build")
    fill(store, cache, "half-written")  # never given back: the worker stopped
    restarted = CacheStore(tmp_path / "caches")
    assert restarted.take("build")[1] is True
    assert not store.location(cache).exists()
