"""Where a mount's content comes from: another task's artifact, the index, a URL, or the payload itself.

Artifacts are fetched with the official client's download helpers and the
run's own temporary credentials (so a private artifact needs the task's
scopes, exactly as in Taskcluster), from the latest run of the task named; an
index namespace is resolved to its task with the same credentials. URLs are
fetched with retries on connection errors and server errors. Every download
goes to a file of its own, and its SHA-256 is computed on the way: when the
payload gives one, a difference fails the mount, with both values in the
log, as generic-worker does.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import taskcluster.aio
import taskcluster.aio.download
import taskcluster.aio.retry
from taskcluster.exceptions import TaskclusterFailure

#: Retries of a failing download, with the client's exponential backoff.
MAX_RETRIES = 5


class MountError(Exception):
    """A mount could not be made: the run fails, and the message says why."""


def describe(content: dict[str, Any]) -> str:
    if "taskId" in content:
        return f"task {content['taskId']} artifact {content['artifact']}"
    if "namespace" in content:
        return f"namespace {content['namespace']} artifact {content['artifact']}"
    if "url" in content:
        return f"url {content['url']}"
    return "raw content" if "raw" in content else "base64 content"


class _HashingFile:
    """A writer for the client's download helpers that hashes what it writes."""

    def __init__(self, path: Path):
        self.path = path
        self._file = path.open("wb")
        self.sha256 = hashlib.sha256()
        self.size = 0

    async def write(self, data: bytes) -> None:
        self._file.write(data)
        self.sha256.update(data)
        self.size += len(data)

    def reset(self) -> None:
        """Start the file over: a retried download writes it again from the first byte."""
        self._file.seek(0)
        self._file.truncate()
        self.sha256 = hashlib.sha256()
        self.size = 0

    def close(self) -> None:
        self._file.close()


class ContentFetcher:
    """Fetches mount content into files under ``downloads``, for one run."""

    def __init__(self, downloads: Path, root_url: str, credentials: Callable[[], dict[str, str]],
                 session: aiohttp.ClientSession, say: Callable[[str], None]):
        self.downloads = downloads
        self.root_url = root_url
        self.credentials = credentials
        self.session = session
        self.say = say
        self._count = 0

    def _options(self) -> dict[str, Any]:
        # The client turns the values of the credentials it is given into bytes, in place.
        return {"rootUrl": self.root_url, "credentials": dict(self.credentials()), "maxRetries": MAX_RETRIES}

    async def fetch(self, content: dict[str, Any]) -> Path:
        """A file holding the content; MountError if it cannot be had or its SHA-256 is not the one required."""
        self.downloads.mkdir(parents=True, exist_ok=True)
        self._count += 1
        path = self.downloads / f"content-{self._count}"
        source = describe(content)
        writer = _HashingFile(path)
        try:
            if "raw" in content or "base64" in content:
                await writer.write(_inline(content))
            elif "url" in content:
                await self._from_url(content["url"], writer)
            else:
                task_id = content.get("taskId") or await self._indexed_task(content["namespace"])
                await self._from_artifact(task_id, content["artifact"], writer)
        finally:
            writer.close()
        digest = writer.sha256.hexdigest()
        required = content.get("sha256")
        if required is None:
            if "raw" not in content and "base64" not in content:
                self.say(f"[mounts] Downloaded {writer.size} bytes with SHA256 {digest} from {source}; "
                         "the payload requires no SHA256, so its authenticity cannot be verified")
            return path
        if digest != required:
            raise MountError(
                f"Download of {source} has SHA256 {digest} but task definition explicitly requires {required}"
            )
        self.say(f"[mounts] Downloaded {writer.size} bytes from {source}, matching the required SHA256 {digest}")
        return path

    async def _indexed_task(self, namespace: str) -> str:
        index = taskcluster.aio.Index(self._options(), session=self.session)
        try:
            found = await index.findTask(namespace)
        except TaskclusterFailure as e:
            raise MountError(f"cannot find the task indexed at {namespace}: {_first_line(e)}") from None
        self.say(f"[mounts] Namespace {namespace} is task {found['taskId']}")
        return found["taskId"]

    async def _from_artifact(self, task_id: str, name: str, writer: _HashingFile) -> None:
        queue = taskcluster.aio.Queue(self._options(), session=self.session)

        async def fresh_writer() -> _HashingFile:
            writer.reset()
            return writer

        try:
            await taskcluster.aio.download.downloadArtifact(
                taskId=task_id, name=name, maxRetries=MAX_RETRIES, queueService=queue, writerFactory=fresh_writer
            )
        except (TaskclusterFailure, aiohttp.ClientError, OSError) as e:
            raise MountError(f"cannot download task {task_id} artifact {name}: {_first_line(e)}") from None

    async def _from_url(self, url: str, writer: _HashingFile) -> None:
        async def attempt(retry_for: Callable[[Exception], None]) -> None:
            writer.reset()
            try:
                async with self.session.get(url) as response:
                    if response.status >= 500:
                        retry_for(MountError(f"{url} answered {response.status}"))
                        return
                    if response.status >= 400:
                        raise MountError(f"cannot download {url}: it answered {response.status} {response.reason}")
                    async for chunk in response.content.iter_chunked(1 << 16):
                        await writer.write(chunk)
            except aiohttp.ClientError as e:
                retry_for(e)

        try:
            await taskcluster.aio.retry.retry(MAX_RETRIES, attempt)
        except (aiohttp.ClientError, MountError) as e:
            raise MountError(f"cannot download {url}: {e}") from None


def _inline(content: dict[str, Any]) -> bytes:
    if "raw" in content:
        return content["raw"].encode()
    try:
        return base64.b64decode(content["base64"], validate=True)
    except binascii.Error as e:
        raise MountError(f"the base64 content is not valid base64: {e}") from None


def _first_line(error: Exception) -> str:
    """The error's message on one line, without the client's request details."""
    text = " ".join(str(error).split("\n---")[0].replace("```", "").split())
    return text[:600] or type(error).__name__

