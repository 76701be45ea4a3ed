"""Objects: named, immutable blobs of data, uploaded once and expired later.

An object is created by its first ``createUpload``, which fixes its project,
``uploadId`` and expiry: only a caller that knows the ``uploadId`` can send
data for it or finish it. The data arrives (inline, or by a PUT to a signed
URL) as a blob whose key, size and hashes the object records — the bytes
themselves never enter the log. Finishing checks every hash the uploader
declared against the hashes measured on arrival; from then on the object
is immutable, and every download hands out those hashes so that the client
can check what it received.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.domain import event

from cairn.domain.aggregate import CairnAggregate
from cairn.domain.errors import Conflict, InvalidInput

#: The algorithms Cairn measures itself; uploaders may declare others too.
MEASURED = ("sha256", "sha512")


def object_key(name: str) -> str:
    return f"object/{name}"


class Object(CairnAggregate):
    @staticmethod
    def create_id(name: str, **_: Any) -> str:
        return object_key(name)

    @event("UploadStarted")
    def __init__(self, name: str, project_id: str, upload_id: str, expires: str, upload_expires: str) -> None:
        self.name = name
        self._begin(project_id, upload_id, expires, upload_expires)

    def _begin(self, project_id: str, upload_id: str, expires: str, upload_expires: str) -> None:
        self.project_id = project_id
        self.upload_id: str | None = upload_id
        self.expires = expires
        self.upload_expires = upload_expires
        self.declared: dict[str, str] = {}
        self.data: dict[str, Any] | None = None
        self.hashes: dict[str, str] = {}
        self.expired = False

    @property
    def finished(self) -> bool:
        return self.upload_id is None

    @event("UploadRestarted")
    def restart(self, project_id: str, upload_id: str, expires: str, upload_expires: str) -> None:
        """An expired object's name is taken by a new upload."""
        self._begin(project_id, upload_id, expires, upload_expires)

    # uploading

    def check_same_upload(self, project_id: str, upload_id: str, expires: str) -> None:
        """A repeated createUpload must name the upload exactly as the first one did."""
        if self.finished or self.expired:
            raise Conflict(f"Object {self.name} already exists")
        if (project_id, upload_id, expires) != (self.project_id, self.upload_id, self.expires):
            raise Conflict(
                f"Object {self.name} is already being uploaded with a different "
                "projectId, uploadId or expires"
            )

    def declare_hashes(self, hashes: dict[str, str]) -> None:
        new = self._new_hashes(hashes)
        if new:
            self._hashes_declared(hashes=new)

    def _new_hashes(self, hashes: dict[str, str]) -> dict[str, str]:
        for algorithm, value in hashes.items():
            if algorithm in self.declared and self.declared[algorithm] != value:
                raise Conflict(f"Object {self.name} already has a different {algorithm} hash")
        return {a: v for a, v in hashes.items() if a not in self.declared}

    @event("HashesDeclared")
    def _hashes_declared(self, hashes: dict[str, str]) -> None:
        self.declared.update(hashes)

    def receive_data(
        self, upload_id: str, blob_key: str, method: str, content_type: str, content_length: int,
        measured: dict[str, str],
    ) -> str | None:
        """Record the blob that holds the data; returns the key of a blob it replaces."""
        if self.finished or self.expired:
            raise Conflict(f"Object {self.name} is already finished; its data cannot change")
        if upload_id != self.upload_id:
            raise Conflict(f"Object {self.name} is being uploaded under another uploadId")
        replaced = self.data["blobKey"] if self.data else None
        self._data_received(
            blob_key=blob_key,
            method=method,
            content_type=content_type,
            content_length=content_length,
            measured=measured,
        )
        return replaced

    @event("DataReceived")
    def _data_received(
        self, blob_key: str, method: str, content_type: str, content_length: int, measured: dict[str, str]
    ) -> None:
        self.data = {
            "blobKey": blob_key,
            "method": method,
            "contentType": content_type,
            "contentLength": content_length,
            "measured": measured,
        }

    def finish(self, project_id: str, upload_id: str, hashes: dict[str, str]) -> bool:
        """Mark the upload complete; False if it already was, with compatible hashes."""
        if project_id != self.project_id:
            raise InvalidInput(f"Object {self.name} does not have projectId {project_id}")
        if self.finished:
            for algorithm, value in hashes.items():
                if self.hashes.get(algorithm) != value:
                    raise Conflict(
                        f"Object {self.name} is already finished, without this {algorithm} hash"
                    )
            return False
        if upload_id != self.upload_id:
            raise Conflict(f"Object {self.name} does not have uploadId {upload_id}")
        declared = {**self.declared, **self._new_hashes(hashes)}
        if self.data is None:
            raise InvalidInput(f"No data has been uploaded for object {self.name}")
        measured = self.data["measured"]
        for algorithm, value in declared.items():
            if algorithm in measured and measured[algorithm] != value:
                raise InvalidInput(
                    f"The data uploaded for object {self.name} does not match its {algorithm} hash"
                )
        self._upload_finished(hashes={**declared, **measured})
        return True

    @event("UploadFinished")
    def _upload_finished(self, hashes: dict[str, str]) -> None:
        self.hashes = hashes
        self.upload_id = None

    # expiry

    def expire(self) -> str | None:
        """Forget the object; returns the key of its blob, to delete."""
        if self.expired:
            return None
        self._expired()
        return self.data["blobKey"] if self.data else None

    @event("Expired")
    def _expired(self) -> None:
        self.expired = True
