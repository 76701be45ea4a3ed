"""Expiry of artifacts and objects: a pass of the reaper.

An artifact past its ``expires`` is expired by an ``ArtifactExpired`` event
on its task (the view drops it; the event stays in the log), and the data
of an ``s3`` artifact is deleted. An object past its ``expires``, or an
upload left unfinished for a day, is expired by the object's ``Expired``
event, and its blob deleted once that is committed. Object artifacts expire
with their objects, which share their expiry.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from cairn.domain.queue.artifacts import s3_blob_key
from cairn.domain.timestamps import iso

log = logging.getLogger("cairn.reaper")

BATCH = 500


class StorageExpiry:
    def __init__(self, artifacts: Any, objects: Any, reads: Any, blobs: Any):
        self.artifacts = artifacts
        self.objects = objects
        self.reads = reads
        self.blobs = blobs

    def __call__(self, now: datetime) -> int:
        done = 0
        for task_id, run_id, name in self.reads.expired_artifacts(iso(now), BATCH):
            artifact = self.artifacts.expire_artifact(task_id, run_id, name, now)
            if artifact is not None and artifact["storageType"] == "s3":
                self._delete(s3_blob_key(task_id, run_id, name))
            done += 1
        for name in self.reads.expired_objects(iso(now), BATCH):
            self.objects.expire(name)
            done += 1
        return done

    def _delete(self, blob: str) -> None:
        try:
            self.blobs.delete(blob)
        except Exception:
            log.exception("could not delete blob %s; it is left behind", blob)
