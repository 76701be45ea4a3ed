"""The queue's artifact commands: create, finish and expire the artifacts of a run.

An ``object`` artifact starts its object's upload in the same transaction
that records the artifact (the upload is "locked in" with a fresh uploadId,
no data yet), so the two can never disagree about who may upload it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import slugid

from cairn.domain.errors import InvalidInput, NotFound
from cairn.domain.event_log import EventLog
from cairn.domain.objects.service import ObjectService
from cairn.domain.queue.artifacts import content_type_of, details_of, object_name
from cairn.domain.queue.task import Task, task_key
from cairn.domain.timestamps import iso, parse_time


class ArtifactService:
    def __init__(self, log: EventLog, objects: ObjectService):
        self.log = log
        self.objects = objects

    def create_artifact(
        self, task_id: str, run_id: int, name: str, request: dict[str, Any], now: datetime
    ) -> tuple[Task, dict[str, Any]]:
        """createArtifact: the task and the artifact as recorded (new, replaced or repeated)."""
        storage_type = request["storageType"]
        expires = iso(parse_time(request["expires"]))
        content_type = request.get("contentType") or content_type_of(name)
        details = details_of(request)

        def create() -> tuple[Task, dict[str, Any]]:
            task = self.log.get(task_key(task_id))
            if task is None or task.expired:
                raise InvalidInput(f"Task {task_id} not found")
            changes: list[Any] = []
            wanted = dict(details)
            existing = task.artifact(run_id, name)
            if storage_type == "object" and not (existing and existing["storageType"] == "object"):
                wanted["uploadId"] = slugid.nice()
            if task.create_artifact(
                run_id, name, storage_type, content_type, expires, wanted,
                request.get("contentLength"), now,
            ):
                changes.append(task)
            artifact = task.artifact(run_id, name)
            if artifact["storageType"] == "object":
                upload = self.objects.start(
                    object_name(task_id, run_id, name),
                    task.definition["projectId"],
                    artifact["details"]["uploadId"],
                    artifact["expires"],
                    now,
                )
                if upload is not None:
                    changes.append(upload)
            if changes:
                self.log.save(*changes)
            return task, artifact

        return self.log.command(create)

    def finish_artifact(self, task_id: str, run_id: int, name: str, upload_id: str) -> None:
        """finishArtifact: an object artifact's data is in place; idempotent."""

        def finish() -> None:
            task = self.log.get(task_key(task_id))
            if task is None or task.expired or task.artifact(run_id, name) is None:
                raise NotFound(f"Artifact {name} of run {run_id} of task {task_id} not found")
            artifact = task.artifact(run_id, name)
            if artifact["storageType"] == "object" and not artifact["present"]:
                try:
                    self.objects.object(object_name(task_id, run_id, name))
                except NotFound:
                    if upload_id == artifact["details"].get("uploadId"):
                        raise InvalidInput("The object storing the artifact's data does not exist") from None
            if task.finish_artifact(run_id, name, upload_id):
                self.log.save(task)

        self.log.command(finish)

    def expire_artifact(self, task_id: str, run_id: int, name: str, now: datetime) -> dict[str, Any] | None:
        """Forget an artifact past its expiry; returns what it was, if it was due."""

        def expire() -> dict[str, Any] | None:
            task = self.log.get(task_key(task_id))
            if task is None:
                return None
            artifact = task.expire_artifact(run_id, name, now)
            if artifact is not None:
                self.log.save(task)
            return artifact

        return self.log.command(expire)
