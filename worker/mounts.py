"""A run's ``mounts``: put in place before its commands, and caches given back after them.

In payload order, as generic-worker does:

- ``file``: the content (decompressed when it has a ``format``) written at
  ``file``;
- ``readOnlyDirectory``: the archive unpacked at ``directory``;
- ``writableDirectoryCache``: a cache of the worker's (:mod:`caches`) moved
  to ``directory``; a new one is empty, or holds its ``content`` unpacked —
  and is deleted at once if that fails.

Paths are relative to the task directory, or absolute. Before a run mounts a
cache, the worker honours every purge request made before the run was
claimed (:mod:`purge_requests`). A mount that cannot be made fails the run,
with the reason in its log; the mounts made until then are undone as usual.

After the commands each cache goes back to the worker, or is deleted when
the last exit status is in ``onExitStatus.purgeCaches``, or the commands did
not end by themselves (``maxRunTime``, cancel, shutdown) and may have left
it half-written.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cairn.worker.archives import UnpackError, decompress_file, unpack_archive
from cairn.worker.caches import Cache, CacheStore
from cairn.worker.mount_content import ContentFetcher, MountError, describe
from cairn.worker.payload import Expander
from cairn.worker.purge_requests import PurgeRequests


@dataclass
class MountSupport:
    """What the worker lends every run's mounts: its caches, its purge requests, and scope expansion."""

    caches: CacheStore
    purge_requests: PurgeRequests | None = None
    expand: Expander | None = None


def target_path(workdir: Path, path: str) -> Path:
    return Path(path) if Path(path).is_absolute() else workdir / path


class TaskMounts:
    def __init__(self, mounts: list[dict[str, Any]], workdir: Path, caches: CacheStore, fetcher: ContentFetcher,
                 say: Callable[[str], None]):
        self.mounts = mounts
        self.workdir = workdir
        self.caches = caches
        self.fetcher = fetcher
        self.say = say
        self.held: list[tuple[Cache, Path]] = []

    @property
    def uses_caches(self) -> bool:
        return any("cacheName" in mount for mount in self.mounts)

    async def mount(self) -> None:
        """Make every mount, in order; MountError says which one failed and why."""
        for mount in self.mounts:
            if "cacheName" in mount:
                await self._cache(mount, target_path(self.workdir, mount["directory"]))
            elif "file" in mount:
                await self._file(mount, target_path(self.workdir, mount["file"]))
            else:
                await self._read_only(mount, target_path(self.workdir, mount["directory"]))

    async def _file(self, mount: dict[str, Any], target: Path) -> None:
        if target.is_dir():
            raise MountError(f"cannot mount file at {target}: it is a directory")
        fetched = await self.fetcher.fetch(mount["content"])
        target.parent.mkdir(parents=True, exist_ok=True)
        fmt = mount.get("format")
        try:
            await asyncio.to_thread(decompress_file, fetched, fmt, target)
        except (UnpackError, OSError) as e:
            raise MountError(f"cannot mount {describe(mount['content'])} at {target}: {e}") from None
        self.say(f"[mounts] Mounted {describe(mount['content'])} at {target}" + (f" ({fmt}-decompressed)" if fmt else ""))

    async def _read_only(self, mount: dict[str, Any], target: Path) -> None:
        fetched = await self.fetcher.fetch(mount["content"])
        count = await self._unpack(fetched, mount["format"], target, describe(mount["content"]))
        self.say(f"[mounts] Unpacked {count} entries of {describe(mount['content'])} ({mount['format']}) at {target}")

    async def _cache(self, mount: dict[str, Any], target: Path) -> None:
        name = mount["cacheName"]
        if target.exists():
            raise MountError(f"cannot mount cache {name} at {target}: something is there already")
        cache, new = self.caches.take(name)
        self.held.append((cache, target))
        target.parent.mkdir(parents=True, exist_ok=True)
        if not new:
            try:
                await asyncio.to_thread(shutil.move, self.caches.location(cache), target)
            except OSError as e:
                raise MountError(f"cannot move cache {name} to {target}: {e}") from None
            self.say(f"[mounts] Mounted writable cache {name} at {target}, made {cache.created}")
            return
        if "content" not in mount:
            target.mkdir()
            self.say(f"[mounts] No cache {name} on this worker yet: mounted a new, empty one at {target}")
            return
        source = describe(mount["content"])
        try:
            fetched = await self.fetcher.fetch(mount["content"])
            count = await self._unpack(fetched, mount["format"], target, source)
        except MountError:
            self.held.remove((cache, target))
            self.caches.discard(target)
            self.say(f"[mounts] Cache {name}: {self.caches.give_back(cache, kept=False)}, as its content could not be "
                     "put in it")
            raise
        self.say(f"[mounts] No cache {name} on this worker yet: mounted a new one at {target}, "
                 f"with the {count} entries of {source} ({mount['format']})")

    async def _unpack(self, fetched: Path, fmt: str, target: Path, source: str) -> int:
        try:
            return await asyncio.to_thread(unpack_archive, fetched, fmt, target)
        except (UnpackError, OSError) as e:
            raise MountError(f"cannot unpack {source} at {target}: {e}") from None

    def unmount(self, purge: str | None) -> None:
        """Give every cache back; ``purge`` is why they are deleted instead (None: they are kept)."""
        if purge and self.held:
            self.say(f"[mounts] Purging the task's caches: {purge}")
        for cache, target in reversed(self.held):
            kept = purge is None and target.is_dir() and not target.is_symlink()
            if kept:
                try:
                    shutil.move(target, self.caches.location(cache))
                except OSError as e:
                    self.say(f"[mounts] Cache {cache.name}: cannot keep it ({e})")
                    kept = False
            elif purge is None:
                self.say(f"[mounts] Cache {cache.name}: {target} is no longer a directory")
            if not kept:
                self.caches.discard(target)
            self.say(f"[mounts] Cache {cache.name}: {self.caches.give_back(cache, kept)}")
        self.held.clear()


class RunMounts:
    """The mounts of one run, from its payload: mounted before its commands, given back after them."""

    def __init__(self, run: Any, payload: dict[str, Any], say: Callable[[str], None]):
        self.run = run
        self.support: MountSupport = run.mount_support or MountSupport(CacheStore(run.worker.work_dir / "caches"))
        self.purge_statuses: list[int] = payload.get("onExitStatus", {}).get("purgeCaches", [])
        self.say = say
        fetcher = ContentFetcher(
            run.directory / "downloads", run.worker.root_url, lambda: run.credentials, run.session, say
        )
        self.mounts = TaskMounts(payload.get("mounts", []), run.workdir, self.support.caches, fetcher, say)
        self.ended = False
        self.status: int | None = None
        self.claimed_at: float = getattr(run, "claimed_at", None) or time.monotonic()

    async def mount(self) -> bool:
        """Make the mounts; False, with the reason in the log, when one cannot be made (the run fails)."""
        if not self.mounts.mounts:
            return True
        try:
            purges = self.support.purge_requests
            if self.mounts.uses_caches and purges is not None:
                how = await purges.honoured_before(self.run.task_id, self.run.run_id, self.claimed_at, self.run.session)
                self.say(f"[mounts] Purge requests made before this run was claimed are honoured ({how})")
            await self.mounts.mount()
        except MountError as e:
            self.say(f"[mounts] {e}")
            self.say("[mounts] The mounts could not be made: the task fails without running its commands")
            return False
        return True

    def commands_ended(self, status: int | None) -> None:
        """The commands ended by themselves with ``status``, or (None) were killed past maxRunTime."""
        self.ended, self.status = True, status

    def unmount(self) -> None:
        self.mounts.unmount(self._purge_reason())

    def _purge_reason(self) -> str | None:
        if not self.ended:
            return "the task was stopped before its commands ended, and may have left them half-written"
        if self.status is None:
            return "the commands were killed past maxRunTime, and may have left them half-written"
        if self.status in self.purge_statuses:
            return f"exit status {self.status} is listed in onExitStatus.purgeCaches"
        return None
