"""Writable directory caches: kept on this worker between tasks, never shared by two running tasks.

As generic-worker keeps them: each cache name has a small pool of
directories under ``<work dir>/caches``. A task that mounts a cache takes
the most recently used directory of that name that no running task holds;
when every one is held (tasks running side by side), it gets a new, empty
one rather than waiting — so a cache is never shared, and no task waits for
another. When the task ends its directory goes back to the pool, or is
deleted when the task asks (``onExitStatus.purgeCaches``), was stopped before
its commands ended, or failed to unpack content into a new cache. At most
``capacity`` idle directories of one name are kept; the least recently used
go first.

A purge request (from the purge-cache service) deletes every directory of
the name made before the request's ``before`` (less five minutes of clock
skew, as generic-worker allows); one that a running task holds is deleted
when the task gives it back.

The pool is saved in ``caches.json`` after each change, so a worker
restarted with the same work directory finds its caches again. Deleting is
a rename into ``trash/`` followed by the removal in a thread, so a large
cache never holds up the worker.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import shutil
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from cairn.domain.timestamps import iso, parse_time, utcnow

log = logging.getLogger("cairn.worker")

#: Clock skew allowed between a purge request's ``before`` and this worker's clock.
CLOCK_SKEW = timedelta(minutes=5)
STATE_FILE = "caches.json"


@dataclass
class Cache:
    name: str
    directory: str
    created: str
    last_used: str
    in_use: bool = field(default=False, compare=False)
    needs_purge: bool = field(default=False, compare=False)

    def saved(self) -> dict[str, str]:
        return {k: v for k, v in asdict(self).items() if k not in ("in_use", "needs_purge")}


class CacheStore:
    def __init__(self, root: Path, capacity: int = 1):
        self.root = root
        self.capacity = max(capacity, 1)
        self.entries = root / "entries"
        self.trash = root / "trash"
        self._caches: list[Cache] = []
        self._loaded = False

    def _load(self) -> None:
        """Read the pool on first use: a worker whose tasks mount no cache leaves nothing on disk."""
        if self._loaded:
            return
        self._loaded = True
        self.entries.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.trash, ignore_errors=True)
        self.trash.mkdir()
        try:
            saved = json.loads((self.root / STATE_FILE).read_text())
        except (OSError, ValueError):
            saved = []
        known = set()
        for item in saved if isinstance(saved, list) else []:
            try:
                cache = Cache(**item)
            except TypeError:
                continue
            if (self.entries / cache.directory).is_dir():
                self._caches.append(cache)
                known.add(cache.directory)
        for leftover in self.entries.iterdir():  # left by a worker that stopped mid-task
            if leftover.name not in known:
                self.discard(leftover)
        self._save()

    def _save(self) -> None:
        state = self.root / STATE_FILE
        partial = state.with_suffix(".partial")
        partial.write_text(json.dumps([c.saved() for c in self._caches], indent=1))
        os.replace(partial, state)

    def location(self, cache: Cache) -> Path:
        """Where the cache is kept while no task holds it."""
        return self.entries / cache.directory

    def names(self) -> list[str]:
        self._load()
        return sorted({c.name for c in self._caches})

    def take(self, name: str) -> tuple[Cache, bool]:
        """A cache of this name for a task, marked held, and whether it is new (empty, not yet on disk)."""
        self._load()
        idle = [c for c in self._caches if c.name == name and not c.in_use and not c.needs_purge]
        if idle:
            cache = max(idle, key=lambda c: c.last_used)
            cache.in_use = True
            return cache, False
        now = iso(utcnow())
        cache = Cache(name=name, directory=secrets.token_hex(8), created=now, last_used=now, in_use=True)
        self._caches.append(cache)
        return cache, True

    def give_back(self, cache: Cache, kept: bool) -> str:
        """The task is done with the cache, whose directory is back at :meth:`location` if ``kept``.

        Returns what became of it, for the task's log.
        """
        cache.in_use = False
        if not kept or cache.needs_purge:
            why = "purged" if kept else "deleted"
            if cache.needs_purge:
                why = "purged, as a purge request asked while it was in use"
            self._remove(cache)
            self._save()
            return why
        cache.last_used = iso(utcnow())
        self._trim(cache.name)
        self._save()
        return "kept for the next task"

    def purge(self, name: str, before: datetime) -> int:
        """Act on a purge request: delete the caches of ``name`` made before ``before``; returns how many."""
        if not self._loaded and not self.root.exists():
            return 0
        self._load()
        purged = 0
        for cache in [c for c in self._caches if c.name == name]:
            if parse_time(cache.created) - CLOCK_SKEW < before:
                purged += 1
                if cache.in_use:
                    cache.needs_purge = True
                else:
                    self._remove(cache)
        if purged:
            log.info("purged %d cache(s) named %r, made before %s", purged, name, iso(before))
            self._save()
        return purged

    def _trim(self, name: str) -> None:
        idle = sorted((c for c in self._caches if c.name == name and not c.in_use), key=lambda c: c.last_used)
        for cache in idle[: max(len(idle) - self.capacity, 0)]:
            self._remove(cache)

    def _remove(self, cache: Cache) -> None:
        self._caches.remove(cache)
        self.discard(self.location(cache))

    def discard(self, path: Path) -> None:
        """Delete a directory without waiting: moved out of the way now, removed in a thread."""
        if not path.exists() and not path.is_symlink():
            return
        doomed = self.trash / secrets.token_hex(8)
        try:
            self.trash.mkdir(parents=True, exist_ok=True)
            os.replace(path, doomed)
        except OSError:  # another file system: removed where it is
            doomed = path
        try:
            asyncio.get_running_loop().run_in_executor(None, shutil.rmtree, doomed, True)
        except RuntimeError:  # no event loop: at start-up
            shutil.rmtree(doomed, ignore_errors=True)
