"""The last lines of a run's log, read from Cairn's own artifact storage.

``public/logs/live.log`` is followed through links (the reference worker
makes it a link to ``live_backing.log`` once the run ends) to data Cairn
holds: an ``object`` artifact's object, or an ``s3`` artifact's blob. A log
that lives elsewhere (a ``reference``), an ``error`` artifact, or none at
all gives no lines.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from cairn.domain.queue.artifacts import object_name, s3_blob_key

LIVE_LOG = "public/logs/live.log"
MAX_LINKS = 5
#: However long its lines, the tail kept is at most this many bytes (its end).
MAX_BYTES = 256 * 1024


class TaskLogs:
    def __init__(self, storage_reads: Any, blobs: Any):
        self.reads = storage_reads
        self.blobs = blobs

    def tail(self, task_id: str, run_id: int, lines: int = 1000, max_bytes: int = MAX_BYTES) -> str | None:
        """The last ``lines`` lines of the run's log, and of those at most the last ``max_bytes``."""
        blob = self._blob_of(task_id, run_id, LIVE_LOG)
        if blob is None or not self.blobs.exists(blob):
            return None
        last: deque[bytes] = deque(maxlen=lines)
        partial = b""
        for chunk in self.blobs.chunks(blob):
            parts = (partial + chunk).split(b"\n")
            partial = parts.pop()[-max_bytes:]  # a line without end keeps only what could be shown
            last.extend(part[-max_bytes:] for part in parts)
        if partial:
            last.append(partial)
        kept = b"\n".join(last)[-max_bytes:]
        return kept.decode("utf-8", errors="replace")

    def _blob_of(self, task_id: str, run_id: int, name: str) -> str | None:
        for _ in range(MAX_LINKS):
            artifact = self.reads.artifact(task_id, run_id, name)
            if artifact is None or not artifact["present"]:
                return None
            kind = artifact["storageType"]
            if kind == "link":
                name = artifact["details"]["artifact"]
                continue
            if kind == "s3":
                return s3_blob_key(task_id, run_id, name)
            if kind == "object":
                found = self.reads.object(object_name(task_id, run_id, name))
                return found["blobKey"] if found and found["finished"] else None
            return None
        return None
