"""The reference worker: claims tasks from one task queue and runs them on this machine.

It speaks only the queue's public API, through the official ``taskcluster``
client, so it works against Taskcluster as well as Cairn. One loop long-polls
``claimWork`` for as many tasks as there is free capacity and hands each
claim to a :class:`~cairn.worker.task_run.TaskRun`, which does the rest
with the claim's temporary credentials.

Each run's log is streamed to Cairn as it is written, and
``public/logs/live.log`` points there (see :mod:`live_log_stream`): readers
follow it through Cairn, and nothing connects to this machine.

A run resolved elsewhere while it runs — cancelled, past its deadline — is
stopped as soon as the event stream says so (:mod:`resolution_stream`), or
at the latest when its next reclaim answers 409.

SIGTERM (or SIGINT) stops claiming, stops every running task and resolves it
as exception ``worker-shutdown`` — so that the queue retries it elsewhere —
after uploading its log; then the worker exits 0.
"""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
import signal
import socket
import tempfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import aiohttp
import taskcluster
import taskcluster.aio
from taskcluster.exceptions import TaskclusterFailure

from cairn.worker.caches import CacheStore
from cairn.worker.chain_of_trust import load_signing_key
from cairn.worker.live_log_stream import ServerLiveLogs
from cairn.worker.mounts import MountSupport
from cairn.worker.payload import auth_expander
from cairn.worker.purge_requests import PurgeRequests
from cairn.worker.resolution_stream import ResolutionStream
from cairn.worker.task_run import TaskRun, WorkerIdentity

log = logging.getLogger("cairn.worker")

#: How long the worker waits for the event stream before it claims anyway (then relying on reclaims).
STREAM_READY_TIMEOUT = 10.0
#: Resolutions remembered for runs not started yet (a cancel that overtook its claim's answer).
EARLY_RESOLUTIONS = 1000


class Worker:
    def __init__(
        self,
        options: dict[str, Any],
        task_queue_id: str,
        worker_group: str,
        worker_id: str,
        capacity: int,
        work_dir: Path,
        signing_key: Any = None,
    ):
        self.options = options
        self.capacity = capacity
        self.identity = WorkerIdentity(
            root_url=options["rootUrl"].rstrip("/"),
            task_queue_id=task_queue_id,
            worker_group=worker_group,
            worker_id=worker_id,
            work_dir=work_dir,
            signing_key=signing_key,
        )
        self.live_logs = ServerLiveLogs()
        caches = CacheStore(work_dir / "caches", capacity)
        self.purge_requests = PurgeRequests(options, task_queue_id, caches)
        self.mount_support = MountSupport(caches, self.purge_requests, auth_expander(options))
        self.runs: dict[asyncio.Task[None], Any] = {}
        self._stopping = asyncio.Event()
        self._slot_freed = asyncio.Event()
        self._claiming: asyncio.Task[Any] | None = None
        self._resolved_early: OrderedDict[tuple[str, int], str] = OrderedDict()

    def stop(self) -> None:
        if not self._stopping.is_set():
            log.info("stopping: no more claims; running tasks resolve as worker-shutdown")
            self._stopping.set()
            if self._claiming is not None:
                self._claiming.cancel()
            for run in self.runs.values():
                run.abandon("worker-shutdown")

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.stop)
        await self.live_logs.start()
        try:
            async with aiohttp.ClientSession() as session:
                resolutions = ResolutionStream(
                    self.identity.root_url, lambda: self.options["credentials"], self.identity.task_queue_id,
                    session, self.resolved_elsewhere,
                )
                following = asyncio.create_task(resolutions.follow(), name="event stream")
                try:
                    await self._until_stopping(resolutions.settled.wait(), STREAM_READY_TIMEOUT)
                    if not resolutions.connected.is_set() and not self._stopping.is_set():
                        log.warning("no event stream yet: claiming anyway; cancels are noticed at reclaim meanwhile")
                    await self._claim_loop(session)
                finally:
                    self.stop()
                    if self.runs:
                        await asyncio.wait(list(self.runs))
                    following.cancel()
                    await asyncio.wait([following])
                    await self.purge_requests.stop()
        finally:
            await self.live_logs.stop()

    async def _claim_loop(self, session: aiohttp.ClientSession) -> None:
        queue = taskcluster.aio.Queue(self.options, session=session)
        ident = self.identity
        log.info(
            "worker %s/%s claiming from %s at %s, capacity %d, work dir %s",
            ident.worker_group, ident.worker_id, ident.task_queue_id, ident.root_url, self.capacity, ident.work_dir,
        )
        failures = 0
        while not self._stopping.is_set():
            free = self.capacity - len(self.runs)
            if free <= 0:
                self._slot_freed.clear()
                await self._until_stopping(self._slot_freed.wait())
                continue
            request = {"workerGroup": ident.worker_group, "workerId": ident.worker_id, "tasks": free}
            self._claiming = asyncio.create_task(queue.claimWork(ident.task_queue_id, request))
            try:
                claims = (await self._claiming)["tasks"]
                failures = 0
            except asyncio.CancelledError:
                if self._stopping.is_set():
                    return
                raise
            except (TaskclusterFailure, aiohttp.ClientError, asyncio.TimeoutError) as e:
                failures += 1
                delay = min(2.0**failures, 30.0)
                log.warning("claimWork failed (%s); trying again in %.0f s", e, delay)
                await self._until_stopping(asyncio.sleep(delay))
                continue
            finally:
                self._claiming = None
            for claim in claims:
                self._start(claim, session)

    def resolved_elsewhere(self, task_id: str, run_id: int, reason: str) -> None:
        """The queue resolved this run as exception (``reason``): stop it, if it is one of ours."""
        for run in self.runs.values():
            if (run.task_id, run.run_id) == (task_id, run_id):
                if run.abandoned is None:  # else it is stopping already (or this is its own report)
                    log.info("%s: resolved as exception (%s) by the queue: stopping it", run, reason)
                    run.abandon(reason)
                return
        self._resolved_early[(task_id, run_id)] = reason
        while len(self._resolved_early) > EARLY_RESOLUTIONS:
            self._resolved_early.popitem(last=False)

    def _start(self, claim: dict[str, Any], session: aiohttp.ClientSession) -> None:
        run = TaskRun(claim, self.identity, session, self.live_logs, mounts=self.mount_support)
        log.info("%s: claimed (%s)", run, claim["task"].get("metadata", {}).get("name", ""))
        if self._stopping.is_set():
            run.abandon("worker-shutdown")
        elif (early := self._resolved_early.pop((run.task_id, run.run_id), None)) is not None:
            run.abandon(early)
        working = asyncio.create_task(run.work(), name=str(run))
        self.runs[working] = run
        working.add_done_callback(self._finished)

    def _finished(self, working: asyncio.Task[None]) -> None:
        run = self.runs.pop(working)
        self._slot_freed.set()
        if not working.cancelled() and working.exception() is not None:
            log.error("%s: the worker failed", run, exc_info=working.exception())

    async def _until_stopping(self, waiting: Any, timeout: float | None = None) -> None:
        """Wait for ``waiting`` unless the worker stops first (or ``timeout`` passes)."""
        waiter = asyncio.ensure_future(waiting)
        stopping = asyncio.ensure_future(self._stopping.wait())
        await asyncio.wait([waiter, stopping], timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        for pending in (waiter, stopping):
            pending.cancel()


def default_worker_id() -> str:
    """This host's name, as a valid workerId."""
    return re.sub(r"[^a-zA-Z0-9_-]", "-", socket.gethostname())[:38] or "worker"


def run_worker(
    task_queue_id: str, worker_group: str, worker_id: str, capacity: int, work_dir: str | None,
    signing_key_file: str | None = None,
) -> None:
    """Run a worker until SIGTERM, with credentials from the TASKCLUSTER_* environment variables.

    With ``signing_key_file``, tasks may ask for ``features.chainOfTrust``; a key that cannot be
    read stops the worker before it claims anything.
    """
    signing_key = load_signing_key(signing_key_file) if signing_key_file else None
    options = taskcluster.optionsFromEnvironment()
    if not options.get("rootUrl"):
        raise ValueError("TASKCLUSTER_ROOT_URL is not set")
    if not options.get("credentials", {}).get("accessToken"):
        raise ValueError("TASKCLUSTER_CLIENT_ID and TASKCLUSTER_ACCESS_TOKEN are not set")
    temporary = work_dir is None
    directory = Path(tempfile.mkdtemp(prefix="cairn-worker-") if temporary else work_dir).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    worker = Worker(options, task_queue_id, worker_group, worker_id, capacity, directory, signing_key)
    try:
        asyncio.run(worker.run())
    finally:
        if temporary:
            shutil.rmtree(directory, ignore_errors=True)
    log.info("worker stopped")
