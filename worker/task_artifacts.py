"""What a run leaves behind: its declared artifacts and its log, uploaded through the queue.

Every file becomes an ``object`` artifact, the way the taskcluster client's
documentation shows: ``createArtifact`` answers with an upload id and
credentials for the object service, ``taskcluster.aio.upload.uploadFromFile``
negotiates the upload (inline data for small files, a PUT to a signed URL
otherwise) and records the data's hashes, and ``finishArtifact`` makes the
artifact present. A declared file or directory that is not there becomes an
``error`` artifact, so that fetching it says why.

The log has two names. While the task runs, ``public/logs/live.log`` is a
``reference`` to the log as the worker streams it to Cairn; at the end the whole log is
uploaded as ``public/logs/live_backing.log`` and ``public/logs/live.log``
becomes a ``link`` to it. The queue refuses to change an artifact's type
except for exactly this (a link may replace a reference), which is also what
Taskcluster's generic-worker does with its logs.

Each upload declares the sha256 (and sha512) of the data to the object
service, which refuses to finish an upload whose data does not match and
hands the hashes to every downloader; :attr:`RunArtifacts.uploaded` keeps
them, for the chain of trust (``worker/chain_of_trust.py``). A declared
artifact's content type is its ``contentType``, or else is guessed from the
file's name (``worker/content_types.py``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import taskcluster.aio
import taskcluster.aio.upload
from taskcluster.exceptions import TaskclusterFailure

from cairn.worker.content_types import DEFAULT_CONTENT_TYPE, content_type_for
from cairn.worker.upload_hashes import HashRecordingObjects

LIVE_LOG = "public/logs/live.log"
BACKING_LOG = "public/logs/live_backing.log"
LOG_CONTENT_TYPE = "text/plain; charset=utf-8"
#: What an upload can fail with, short of a bug.
UPLOAD_ERRORS = (TaskclusterFailure, aiohttp.ClientError, OSError)


class ArtifactMissing(Exception):
    def __init__(self, message: str, reason: str = "file-missing-on-worker"):
        super().__init__(message)
        self.reason = reason


class RunArtifacts:
    """The artifacts of one run, created with the run's current credentials."""

    def __init__(self, task_id: str, run_id: int, expires: str, root_url: str,
                 queue: Callable[[], taskcluster.aio.Queue], session: aiohttp.ClientSession):
        self.task_id = task_id
        self.run_id = str(run_id)
        self.expires = expires
        self.root_url = root_url
        self.queue = queue
        self.session = session
        #: The sha256 of every object artifact uploaded, by name.
        self.uploaded: dict[str, str] = {}

    async def point_log_at(self, url: str) -> None:
        """Make ``public/logs/live.log`` a reference to the live log at ``url``."""
        await self._create(LIVE_LOG, {"storageType": "reference", "expires": self.expires,
                                      "contentType": LOG_CONTENT_TYPE, "url": url})

    async def point_at(self, name: str, url: str) -> None:
        """Make ``name`` a reference to ``url`` (interactive shells)."""
        await self._create(name, {"storageType": "reference", "expires": self.expires,
                                  "contentType": DEFAULT_CONTENT_TYPE, "url": url})

    async def upload_log(self, path: Path) -> None:
        """Upload the finished log and point ``public/logs/live.log`` at the copy."""
        await self._upload_file(BACKING_LOG, path, LOG_CONTENT_TYPE, self.expires)
        await self._create(LIVE_LOG, {"storageType": "link", "expires": self.expires,
                                      "contentType": LOG_CONTENT_TYPE, "artifact": BACKING_LOG})

    async def upload_declared(self, declared: list[dict[str, Any]], workdir: Path, say: Callable[[str], None]) -> bool:
        """Upload the payload's ``artifacts``; False if any is missing or failed to upload."""
        complete = True
        for artifact in declared:
            expires = artifact.get("expires", self.expires)
            try:
                for name, path in files_of(artifact, workdir):
                    content_type = artifact.get("contentType") or content_type_for(path.name)
                    await self._upload_file(name, path, content_type, expires)
                    say(f"Uploaded artifact {name} ({path.stat().st_size} bytes, {content_type})")
            except ArtifactMissing as e:
                complete = False
                say(f"Artifact {artifact['name']}: {e}")
                try:
                    await self._create(artifact["name"], {"storageType": "error", "expires": expires,
                                                          "reason": e.reason, "message": str(e)})
                except UPLOAD_ERRORS as refused:
                    say(f"Artifact {artifact['name']}: could not record the error: {refused}")
            except UPLOAD_ERRORS as e:
                complete = False
                say(f"Artifact {artifact['name']}: upload failed: {e}")
        return complete

    async def upload_file(self, name: str, path: Path, content_type: str) -> None:
        """Upload one file as an object artifact expiring with the task."""
        await self._upload_file(name, path, content_type, self.expires)

    async def _create(self, name: str, request: dict[str, Any]) -> dict[str, Any]:
        return await self.queue().createArtifact(self.task_id, self.run_id, name, request)

    async def _upload_file(self, name: str, path: Path, content_type: str, expires: str) -> None:
        created = await self._create(name, {"storageType": "object", "expires": expires, "contentType": content_type})
        objects = HashRecordingObjects(taskcluster.aio.Object(
            {"rootUrl": self.root_url, "credentials": created["credentials"]}, session=self.session
        ))
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
        await self.queue().finishArtifact(self.task_id, self.run_id, name, {"uploadId": created["uploadId"]})
        self.uploaded[name] = objects.hashes["sha256"]


def files_of(artifact: dict[str, Any], workdir: Path) -> list[tuple[str, Path]]:
    """(artifact name, file) for each file a declared artifact stands for."""
    root = workdir.resolve()
    path = (root / artifact["path"]).resolve()
    if not path.is_relative_to(root):
        raise ArtifactMissing(f"{artifact['path']} is outside the task's directory", "invalid-resource-on-worker")
    if artifact["type"] == "file":
        if not path.is_file():
            raise ArtifactMissing(f"no file {artifact['path']}")
        return [(artifact["name"], path)]
    if not path.is_dir():
        raise ArtifactMissing(f"no directory {artifact['path']}")
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.resolve().is_relative_to(root))
    return [(f"{artifact['name']}/{p.relative_to(path).as_posix()}", p) for p in files]
