"""Running one claimed task here: its directory, environment, processes, log and outcome.

A ``TaskRun`` owns one claimed run from start to resolution:

1. the log is streamed to Cairn as it grows, and ``public/logs/live.log``
   points there (see :mod:`live_log_stream`);
2. the payload is checked against ``schemas/worker/v1/payload.yml``; the
   commands run one after the other in a fresh directory, each in its own
   process group, with stdout and stderr in the log, all within
   ``maxRunTime``; meanwhile the claim is reclaimed whenever a third of the
   time it has left has passed;
3. the declared artifacts and then the log are uploaded, and ``live.log``
   points at the upload;
4. the run is reported: completed (exit 0), failed (non-zero, maxRunTime
   exceeded, an artifact missing), or exception (``malformed-payload``,
   ``intermittent-task`` for an ``onExitStatus.retry`` status,
   ``worker-shutdown``, ``internal-error``).

A run is *abandoned* when the worker shuts down, or when a reclaim answers
409 — the task was cancelled, or the claim lapsed and went to another run:
its processes are killed at once and the log is still uploaded, but only a
shutdown is reported; a lost claim is no longer this worker's to resolve.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import shutil
import time
import traceback
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

import aiohttp
import taskcluster.aio
import yaml
from jsonschema import Draft7Validator
from jsonschema.exceptions import best_match
from taskcluster.exceptions import TaskclusterFailure, TaskclusterRestFailure

from cairn.api.formats import checker as format_checker
from cairn.domain.timestamps import parse_time
from cairn.worker import chain_of_trust
from cairn.worker.interactive_shell import InteractiveShells
from cairn.worker.mounts import MountSupport, RunMounts
from cairn.worker.payload import declared_artifacts, payload_refusals
from cairn.worker.resource_monitor import monitored
from cairn.worker.task_artifacts import UPLOAD_ERRORS, RunArtifacts
from cairn.worker.task_processes import commands_of, run_commands
from cairn.worker.task_proxy import TaskProxy

log = logging.getLogger("cairn.worker")

DEFAULT_MAX_RUN_TIME = 3600
#: Variables of the worker's own environment that tasks see; its credentials are not among them.
PASSED_THROUGH = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TERM", "USER", "LOGNAME", "SHELL")


@dataclass(frozen=True)
class WorkerIdentity:
    root_url: str
    task_queue_id: str
    worker_group: str
    worker_id: str
    work_dir: Path
    #: The ed25519 key that signs chains of trust (None: the feature is off).
    signing_key: Any = None


class TaskLog:
    """The task's log: a file that only grows, and that followers read as it does."""

    def __init__(self, path: Path):
        self.path = path
        self.closed = False
        self._file = path.open("ab")
        self._grown = asyncio.Event()

    def write(self, data: bytes) -> None:
        if data and not self.closed:
            self._file.write(data)
            self._file.flush()
            self._wake()

    def line(self, text: str) -> None:
        stamp = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        self.write(f"[cairn-worker {stamp}] {text}\n".encode())

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._file.close()
            self._wake()

    def _wake(self) -> None:
        grown, self._grown = self._grown, asyncio.Event()
        grown.set()

    async def follow(self) -> AsyncIterator[bytes]:
        """Everything written so far, then each new write, until the log is closed."""
        with self.path.open("rb") as f:
            while True:
                grown = self._grown
                chunk = f.read(65536)
                if chunk:
                    yield chunk
                elif self.closed:
                    return
                else:
                    await grown.wait()


class TaskRun:
    def __init__(self, claim: dict[str, Any], worker: WorkerIdentity, session: aiohttp.ClientSession, live_logs: Any,
                 mounts: MountSupport | None = None):
        self.task_id: str = claim["status"]["taskId"]
        self.run_id: int = claim["runId"]
        self.task: dict[str, Any] = claim["task"]
        self.credentials: dict[str, str] = claim["credentials"]
        self.taken_until: str = claim["takenUntil"]
        self.worker = worker
        self.session = session
        self.live_logs = live_logs
        self.directory = worker.work_dir / f"{self.task_id}-{self.run_id}"
        self.workdir = self.directory / "work"
        self.artifacts = RunArtifacts(
            self.task_id, self.run_id, self.task["expires"], worker.root_url, self.queue, session
        )
        self.abandoned: str | None = None
        self._execution: asyncio.Task[tuple[str, str]] | None = None
        self.mount_support = mounts
        self.claimed_at = time.monotonic()
        self.mounted: RunMounts | None = None

    def __str__(self) -> str:
        return f"task {self.task_id} run {self.run_id}"

    def queue(self) -> taskcluster.aio.Queue:
        """A queue client with the run's current temporary credentials (a reclaim replaces them)."""
        # The client turns the values of the credentials it is given into bytes, in place.
        options = {"rootUrl": self.worker.root_url, "credentials": dict(self.credentials), "maxRetries": 5}
        return taskcluster.aio.Queue(options, session=self.session)

    def abandon(self, why: str) -> None:
        """Stop the run now: ``worker-shutdown``, ``claim-lost``, or the reason the queue resolved it with."""
        if self.abandoned is None:
            self.abandoned = why
            if self._execution is not None:
                self._execution.cancel()

    async def work(self) -> None:
        started = time.monotonic()
        self.workdir.mkdir(parents=True)
        task_log = TaskLog(self.directory / "live.log")
        keeper = asyncio.create_task(self._keep_claim())
        try:
            task_log.line(f"Task {self.task_id}, run {self.run_id}")
            task_log.line(
                f"Worker {self.worker.worker_group}/{self.worker.worker_id} "
                f"on {self.worker.task_queue_id}, root URL {self.worker.root_url}"
            )
            await self._quietly("stream the live log through Cairn", self.live_logs.publish(task_log, self))
            resolution = await self._run(task_log)
            elapsed = time.monotonic() - started
            if resolution is None:
                task_log.line(f"Stopped after {elapsed:.3f} s; the run is no longer this worker's to report")
            else:
                task_log.line(f"Resolving as {describe(*resolution)} after {elapsed:.3f} s")
            task_log.close()
            await self.live_logs.drain(task_log)
            await self._quietly("upload the log", self.artifacts.upload_log(task_log.path))
            if resolution is None:
                log.info("%s: stopped after %.1f s, the claim was lost (cancelled or claimed away)", self, elapsed)
                return
            await self._quietly(f"report {describe(*resolution)}", self._report(*resolution))
            log.info("%s: %s after %.1f s", self, describe(*resolution), elapsed)
        finally:
            keeper.cancel()
            task_log.close()
            self.live_logs.unpublish(task_log)
            shutil.rmtree(self.directory, ignore_errors=True)

    async def _run(self, task_log: TaskLog) -> tuple[str, str] | None:
        """(state, reason) to report, or None when the claim is lost."""
        if self.abandoned is None:
            self._execution = asyncio.create_task(self._execute(task_log))
            await asyncio.wait([self._execution])
            if self.mounted is not None:
                self.mounted.unmount()
            if not self._execution.cancelled():
                error = self._execution.exception()
                if error is None:
                    return self._execution.result()
                task_log.line("The worker failed to run the task: " + "".join(traceback.format_exception(error)))
                log.error("%s: the worker failed to run it", self, exc_info=error)
                return "exception", "internal-error"
        if self.abandoned == "worker-shutdown":
            task_log.line("The worker is shutting down: the task was stopped and will be retried elsewhere")
            return "exception", "worker-shutdown"
        if self.abandoned == "claim-lost":
            task_log.line("The claim was lost (the task was cancelled, or claimed by another run): the task was stopped")
        else:
            task_log.line(f"The queue resolved the run as exception ({self.abandoned}): the task was stopped")
        return None

    async def _execute(self, task_log: TaskLog) -> tuple[str, str]:
        payload = self.task.get("payload")
        errors = payload_errors(payload)
        if errors:
            task_log.line("The payload does not match the worker's schema /schemas/worker/v1/payload.json:")
            for error in errors:
                task_log.line("  " + error)
            return "exception", "malformed-payload"
        refused = chain_of_trust.payload_problems(payload, self.worker.signing_key)
        if refused:
            for problem in refused:
                task_log.line(problem)
            return "exception", "malformed-payload"
        expand = self.mount_support.expand if self.mount_support else None
        refusals = await payload_refusals(self.task, self.worker.task_queue_id, expand)
        if refusals:
            task_log.line("This worker cannot run the payload:")
            for refusal in refusals:
                task_log.line("  " + refusal)
            return "exception", "malformed-payload"
        self.mounted = RunMounts(self, payload, task_log.line)
        if not await self.mounted.mount():
            return "failed", "failed"
        max_run_time = payload.get("maxRunTime", DEFAULT_MAX_RUN_TIME)
        proxy = shells = None
        if payload.get("features", {}).get("taskclusterProxy"):
            proxy = TaskProxy(self.worker.root_url, lambda: self.credentials, self.session)
            await proxy.start()
            task_log.line(f"taskclusterProxy listening at {proxy.url}")
        try:
            env = self._environment(payload.get("env", {}), proxy.url if proxy else None)
            if payload.get("features", {}).get("interactive"):
                shells = await InteractiveShells.start(self, env, task_log.line)
            started = time.monotonic()
            async with monitored(payload, task_log.line):
                status = await run_commands(commands_of(payload["command"]), self.workdir, env, task_log, max_run_time)
            self.mounted.commands_ended(status)
            elapsed = time.monotonic() - started
        finally:
            if proxy is not None:
                await proxy.stop()
            if shells is not None:
                await shells.stop()
        if status is None:
            task_log.line(f"maxRunTime of {max_run_time} s exceeded: the task was killed after {elapsed:.3f} s")
        else:
            task_log.line(f"Exit status {status} after {elapsed:.3f} s")
        declared = declared_artifacts(payload, self.workdir, task_log.line)
        uploaded = await self.artifacts.upload_declared(declared, self.workdir, task_log.line)
        if chain_of_trust.requested(payload):
            uploaded = await chain_of_trust.publish(self, task_log.path, task_log.line) and uploaded
        if status == 0 and uploaded:
            return "completed", "completed"
        if status in payload.get("onExitStatus", {}).get("retry", []):
            task_log.line(f"Exit status {status} is listed in onExitStatus.retry: the task will be retried")
            return "exception", "intermittent-task"
        return "failed", "failed"

    def _environment(self, payload_env: dict[str, str], proxy_url: str | None) -> dict[str, str]:
        env = {name: os.environ[name] for name in PASSED_THROUGH if name in os.environ}
        env.setdefault("PATH", os.defpath)
        env["HOME"] = str(self.workdir)
        env.update(payload_env)
        env.update(
            TASK_ID=self.task_id,
            RUN_ID=str(self.run_id),
            TASK_GROUP_ID=self.task.get("taskGroupId", self.task_id),
            TASK_WORKDIR=str(self.workdir),
            TASKCLUSTER_ROOT_URL=self.worker.root_url,
        )
        if proxy_url:
            env["TASKCLUSTER_PROXY_URL"] = proxy_url
        return env

    async def _keep_claim(self) -> None:
        """Reclaim whenever a third of the claim's remaining time has passed; a 409 means it is lost."""
        while True:
            left = (_parse_time(self.taken_until) - datetime.now(timezone.utc)).total_seconds()
            await asyncio.sleep(max(left / 3, 0.2))
            try:
                reclaimed = await self.queue().reclaimTask(self.task_id, str(self.run_id))
            except TaskclusterRestFailure as e:
                if e.status_code == 409:
                    self.abandon("claim-lost")
                    return
                log.warning("%s: reclaim failed, trying again: %s", self, e)
                continue
            except (TaskclusterFailure, aiohttp.ClientError, asyncio.TimeoutError) as e:
                log.warning("%s: reclaim failed, trying again: %s", self, e)
                continue
            self.credentials = reclaimed["credentials"]
            self.taken_until = reclaimed["takenUntil"]

    async def _report(self, state: str, reason: str) -> None:
        queue, run_id = self.queue(), str(self.run_id)
        if state == "completed":
            await queue.reportCompleted(self.task_id, run_id)
        elif state == "failed":
            await queue.reportFailed(self.task_id, run_id)
        else:
            await queue.reportException(self.task_id, run_id, {"reason": reason})

    async def _quietly(self, what: str, call: Any) -> None:
        try:
            await call
        except UPLOAD_ERRORS as e:
            log.warning("%s: could not %s: %s", self, what, e)


def describe(state: str, reason: str) -> str:
    return state if state == reason else f"{state} ({reason})"


def _parse_time(value: str) -> datetime:
    return parse_time(value)


# payload


@functools.cache
def _payload_validator() -> Draft7Validator:
    text = (resources.files("cairn.schemas") / "worker" / "v1" / "payload.yml").read_text()
    return Draft7Validator(yaml.safe_load(text), format_checker=format_checker)


def payload_errors(payload: Any) -> list[str]:
    """What is wrong with a payload, one line per problem; empty when it is valid."""
    described = []
    for error in sorted(_payload_validator().iter_errors(payload), key=lambda e: list(map(str, e.absolute_path))):
        error = best_match([error]) or error
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
        described.append(f"payload{where}: {error.message}")
    return described
