"""Running one claimed task here: its directory, environment, processes, log and outcome.

A ``TaskRun`` owns one claimed run from start to resolution:

1. ``public/logs/live.log`` becomes a ``reference`` artifact pointing at the
   worker's live-log server, which streams the log file as it grows;
2. the payload is checked against ``schemas/worker/v1/payload.yml``; the
   commands run in a fresh directory, each in its own process group, with
   stdout and stderr appended to the log, all within ``maxRunTime``;
   meanwhile the claim is reclaimed at a third of the time it has left;
3. the declared artifacts are uploaded as ``object`` artifacts;
4. the log is uploaded as ``public/logs/live_backing.log`` and
   ``public/logs/live.log`` becomes a ``link`` to it (the queue lets a link
   replace a reference, as generic-worker relies on);
5. the run is reported: completed (exit 0), failed (non-zero, maxRunTime
   exceeded, an artifact missing), or exception (``malformed-payload``,
   ``intermittent-task`` for an ``onExitStatus.retry`` status,
   ``worker-shutdown``, ``internal-error``).

A run is *abandoned* when the worker shuts down, or when a reclaim answers
409 (the task was cancelled or the claim lapsed and went to someone else):
the processes are killed at once, the log is still uploaded, and only a
shutdown reports anything.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import mimetypes
import os
import shlex
import shutil
import signal
import time
import traceback
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

import aiohttp
import taskcluster
import yaml
import taskcluster.aio
import taskcluster.aio.upload
from taskcluster.exceptions import TaskclusterFailure, TaskclusterRestFailure

from cairn.consumers.task_proxy import TaskProxy

log = logging.getLogger("cairn.worker")

LIVE_LOG = "public/logs/live.log"
BACKING_LOG = "public/logs/live_backing.log"
LOG_CONTENT_TYPE = "text/plain; charset=utf-8"
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


class TaskLog:
    """The task's log: a file that only grows, and that followers read as it does."""

    def __init__(self, path: Path):
        self.path = path
        self._file = path.open("ab")
        self._grown = asyncio.Event()
        self.closed = False
        self.token = ""

    def write(self, data: bytes) -> None:
        if self.closed or not data:
            return
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


class RunAbandoned(Exception):
    """The run was stopped from outside: the worker is shutting down, or the claim is lost."""


class TaskRun:
    def __init__(self, claim: dict[str, Any], worker: WorkerIdentity, session: aiohttp.ClientSession, live_logs: Any):
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
        self.abandoned: str | None = None
        self._execution: asyncio.Task[tuple[str, str]] | None = None

    def __str__(self) -> str:
        return f"task {self.task_id} run {self.run_id}"

    def queue(self) -> taskcluster.aio.Queue:
        """A queue client with the run's current temporary credentials (they change on reclaim)."""
        # The client turns the values of the credentials it is given into bytes, in place.
        options = {"rootUrl": self.worker.root_url, "credentials": dict(self.credentials), "maxRetries": 5}
        return taskcluster.aio.Queue(options, session=self.session)

    def abandon(self, why: str) -> None:
        """Stop the run now: ``worker-shutdown`` or ``claim-lost``."""
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
            await self._publish_live_log(task_log)
            task_log.line(f"Task {self.task_id}, run {self.run_id}")
            task_log.line(
                f"Worker {self.worker.worker_group}/{self.worker.worker_id} "
                f"on {self.worker.task_queue_id}, root URL {self.worker.root_url}"
            )
            resolution = await self._run(task_log)
            elapsed = time.monotonic() - started
            if resolution is None:
                task_log.line(f"Stopped after {elapsed:.3f} s; the run is no longer this worker's to report")
            else:
                task_log.line(f"Resolving as {_describe(*resolution)} after {elapsed:.3f} s")
        finally:
            keeper.cancel()
            task_log.close()
            try:
                await self._upload_log(task_log)
            finally:
                self.live_logs.unpublish(task_log)
                shutil.rmtree(self.directory, ignore_errors=True)
        if resolution is None:
            log.info("%s: stopped after %.1f s: the claim was lost (cancelled or claimed away)", self, elapsed)
            return
        await self._report(*resolution)
        log.info("%s: %s after %.1f s", self, _describe(*resolution), elapsed)

    async def _run(self, task_log: TaskLog) -> tuple[str, str] | None:
        """(state, reason) to report, or None when the claim is lost."""
        if self.abandoned is None:
            self._execution = asyncio.create_task(self._execute(task_log))
            await asyncio.wait([self._execution])
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
        task_log.line("The claim was lost (the task was cancelled, or claimed by another worker): the task was stopped")
        return None

    async def _execute(self, task_log: TaskLog) -> tuple[str, str]:
        payload = self.task.get("payload")
        errors = payload_errors(payload)
        if errors:
            task_log.line("The payload does not match the worker's schema (/schemas/worker/v1/payload.json):")
            for error in errors:
                task_log.line("  " + error)
            return "exception", "malformed-payload"
        max_run_time = payload.get("maxRunTime", DEFAULT_MAX_RUN_TIME)
        proxy = None
        if payload.get("features", {}).get("taskclusterProxy"):
            proxy = TaskProxy(self.worker.root_url, lambda: self.credentials, self.session)
            await proxy.start()
            task_log.line(f"taskclusterProxy listening at {proxy.url}")
        try:
            env = self._environment(payload.get("env", {}), proxy.url if proxy else None)
            started = time.monotonic()
            exit_status = await run_commands(commands_of(payload["command"]), self.workdir, env, task_log, max_run_time)
            elapsed = time.monotonic() - started
        finally:
            if proxy is not None:
                await proxy.stop()
        if exit_status is None:
            task_log.line(f"maxRunTime of {max_run_time} s exceeded: the task was killed after {elapsed:.3f} s")
        else:
            task_log.line(f"Exit status {exit_status} after {elapsed:.3f} s")
        artifacts_ok = await self._upload_artifacts(payload.get("artifacts", []), task_log)
        if exit_status == 0 and artifacts_ok:
            return "completed", "completed"
        if exit_status in payload.get("onExitStatus", {}).get("retry", []):
            task_log.line(f"Exit status {exit_status} is listed in onExitStatus.retry: the task will be retried")
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
        """Reclaim at a third of the time the claim has left; a 409 means it is lost."""
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

    # artifacts

    async def _publish_live_log(self, task_log: TaskLog) -> None:
        url = self.live_logs.publish(task_log)
        try:
            await self._create_artifact(
                LIVE_LOG,
                {"storageType": "reference", "expires": self.task["expires"], "contentType": LOG_CONTENT_TYPE, "url": url},
            )
        except (TaskclusterFailure, aiohttp.ClientError) as e:
            log.warning("%s: could not create %s: %s", self, LIVE_LOG, e)

    async def _upload_log(self, task_log: TaskLog) -> None:
        try:
            await self._upload_file(BACKING_LOG, task_log.path, LOG_CONTENT_TYPE, self.task["expires"])
            await self._create_artifact(
                LIVE_LOG,
                {"storageType": "link", "expires": self.task["expires"], "contentType": LOG_CONTENT_TYPE,
                 "artifact": BACKING_LOG},
            )
        except (TaskclusterFailure, aiohttp.ClientError, OSError) as e:
            log.warning("%s: could not upload the log: %s", self, e)

    async def _upload_artifacts(self, declared: list[dict[str, Any]], task_log: TaskLog) -> bool:
        ok = True
        for artifact in declared:
            expires = artifact.get("expires", self.task["expires"])
            try:
                for name, path in _files_of(artifact, self.workdir):
                    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
                    await self._upload_file(name, path, content_type, expires)
                    task_log.line(f"Uploaded artifact {name} ({path.stat().st_size} bytes, {content_type})")
            except ArtifactMissing as e:
                ok = False
                task_log.line(f"Artifact {artifact['name']}: {e}")
                error = {"storageType": "error", "expires": expires, "reason": e.reason, "message": str(e)}
                await self._try(self._create_artifact(artifact["name"], error), task_log)
            except (TaskclusterFailure, aiohttp.ClientError, OSError) as e:
                ok = False
                task_log.line(f"Artifact {artifact['name']}: upload failed: {e}")
        return ok

    async def _try(self, call: Any, task_log: TaskLog) -> None:
        try:
            await call
        except (TaskclusterFailure, aiohttp.ClientError) as e:
            task_log.line(f"... which the queue refused: {e}")

    async def _create_artifact(self, name: str, request: dict[str, Any]) -> dict[str, Any]:
        return await self.queue().createArtifact(self.task_id, str(self.run_id), name, request)

    async def _upload_file(self, name: str, path: Path, content_type: str, expires: str) -> None:
        created = await self._create_artifact(
            name, {"storageType": "object", "expires": expires, "contentType": content_type}
        )
        objects = taskcluster.aio.Object(
            {"rootUrl": self.worker.root_url, "credentials": created["credentials"]}, session=self.session
        )
        with path.open("rb") as f:
            await taskcluster.aio.upload.uploadFromFile(
                projectId=created["projectId"],
                name=created["name"],
                contentType=content_type,
                contentLength=os.fstat(f.fileno()).st_size,
                uploadId=created["uploadId"],
                expires=created["expires"],
                maxRetries=5,
                objectService=objects,
                file=f,
            )
        await self.queue().finishArtifact(self.task_id, str(self.run_id), name, {"uploadId": created["uploadId"]})

    async def _report(self, state: str, reason: str) -> None:
        queue, run_id = self.queue(), str(self.run_id)
        try:
            if state == "completed":
                await queue.reportCompleted(self.task_id, run_id)
            elif state == "failed":
                await queue.reportFailed(self.task_id, run_id)
            else:
                await queue.reportException(self.task_id, run_id, {"reason": reason})
        except (TaskclusterFailure, aiohttp.ClientError) as e:
            log.warning("%s: could not report %s: %s", self, _describe(state, reason), e)


class ArtifactMissing(Exception):
    def __init__(self, message: str, reason: str = "file-missing-on-worker"):
        super().__init__(message)
        self.reason = reason


def _files_of(artifact: dict[str, Any], workdir: Path) -> list[tuple[str, Path]]:
    """(artifact name, file) for each file a declared artifact stands for."""
    path = (workdir / artifact["path"]).resolve()
    if not path.is_relative_to(workdir.resolve()):
        raise ArtifactMissing(f"{artifact['path']} is outside the task's directory", "invalid-resource-on-worker")
    if artifact["type"] == "file":
        if not path.is_file():
            raise ArtifactMissing(f"no file {artifact['path']}")
        return [(artifact["name"], path)]
    if not path.is_dir():
        raise ArtifactMissing(f"no directory {artifact['path']}")
    files = sorted(p for p in path.rglob("*") if p.is_file())
    return [(f"{artifact['name']}/{p.relative_to(path).as_posix()}", p) for p in files]


# payload


@functools.cache
def _payload_validator() -> Any:
    from jsonschema import Draft7Validator

    text = (resources.files("cairn.schemas") / "worker" / "v1" / "payload.yml").read_text()
    return Draft7Validator(yaml.safe_load(text), format_checker=Draft7Validator.FORMAT_CHECKER)


def payload_errors(payload: Any) -> list[str]:
    """What is wrong with a payload, one line per problem; empty when it is valid."""
    from jsonschema.exceptions import best_match

    errors = sorted(_payload_validator().iter_errors(payload), key=lambda e: list(map(str, e.absolute_path)))
    described = []
    for error in errors:
        error = best_match([error]) or error
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
        described.append(f"payload{where}: {error.message}")
    return described


# processes


def commands_of(command: str | list[Any]) -> list[list[str]]:
    """The payload's ``command`` as a list of argument vectors."""
    if isinstance(command, str):
        return [["/bin/sh", "-c", command]]
    if all(isinstance(part, str) for part in command):
        return [list(command)]
    return [list(argv) for argv in command]


async def run_commands(commands: list[list[str]], cwd: Path, env: dict[str, str], task_log: TaskLog,
                       max_run_time: float) -> int | None:
    """The exit status of the last command run (the first non-zero), or None past ``max_run_time``."""
    try:
        async with asyncio.timeout(max_run_time):
            status = 0
            for argv in commands:
                task_log.line(f"Running {shlex.join(argv)}")
                status = await run_process(argv, cwd, env, task_log)
                if status != 0:
                    break
            return status
    except TimeoutError:
        return None


async def run_process(argv: list[str], cwd: Path, env: dict[str, str], task_log: TaskLog) -> int:
    """Run one command in a new process group; whatever is left of the group when it ends is killed."""
    try:
        process = await asyncio.create_subprocess_exec(
            *argv, cwd=cwd, env=env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, start_new_session=True,
        )
    except OSError as e:
        task_log.line(f"Cannot start {argv[0]}: {e}")
        return 127
    assert process.stdout is not None
    copying = asyncio.create_task(_copy(process.stdout, task_log))
    try:
        return await process.wait()
    finally:
        _kill_group(process.pid)
        if process.returncode is None:
            await process.wait()
        try:
            # A process that left the group may still hold the pipe open.
            await asyncio.wait_for(copying, 5)
        except asyncio.TimeoutError:
            pass


async def _copy(stream: asyncio.StreamReader, task_log: TaskLog) -> None:
    while chunk := await stream.read(65536):
        task_log.write(chunk)


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _describe(state: str, reason: str) -> str:
    return state if state == reason else f"{state} ({reason})"


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
