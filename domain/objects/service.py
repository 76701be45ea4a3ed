"""The object service's commands: start, feed and finish uploads; expire objects.

Data is written to the blob store *before* the command that records it, under
a key no other upload uses; if the command then fails, the blob is deleted,
and a blob that an upload replaces or an expiry releases is deleted only
after the change is committed. So the log never names a blob that is not
there, and a failed request leaves no blob behind.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
from datetime import datetime, timedelta
from typing import Any, Protocol

from cairn.domain.errors import InvalidInput, NotFound
from cairn.domain.event_log import EventLog
from cairn.domain.objects.model import Object, object_key
from cairn.domain.timestamps import iso, parse_time

log = logging.getLogger("cairn.objects")

DATA_INLINE_MAX = 8192
UNFINISHED_UPLOAD_LIFETIME = timedelta(days=1)


class Blobs(Protocol):
    def put(self, key: str, data: bytes) -> None: ...
    def delete(self, key: str) -> None: ...


def measure(data: bytes) -> dict[str, str]:
    return {"sha256": hashlib.sha256(data).hexdigest(), "sha512": hashlib.sha512(data).hexdigest()}


class ObjectService:
    def __init__(self, log: EventLog, blobs: Blobs, new_blob_key: Any):
        self.log = log
        self.blobs = blobs
        self.new_blob_key = new_blob_key

    def object(self, name: str) -> Object:
        """A finished, unexpired object."""
        found = self.log.get(object_key(name))
        if found is None or found.expired or not found.finished:
            raise NotFound(f'Object "{name}" not found')
        return found

    def start(self, name: str, project_id: str, upload_id: str, expires: str, now: datetime) -> Object | None:
        """The object a new upload creates (or restarts), or None when this is a repeat of it.

        For use inside a command that saves the result with other aggregates.
        """
        expires = iso(parse_time(expires))
        existing = self.log.get(object_key(name))
        if existing is not None and existing.expired:
            existing.restart(
                project_id=project_id,
                upload_id=upload_id,
                expires=expires,
                upload_expires=iso(now + UNFINISHED_UPLOAD_LIFETIME),
            )
            return existing
        if existing is not None:
            existing.check_same_upload(project_id, upload_id, expires)
            return None
        return Object(
            name=name,
            project_id=project_id,
            upload_id=upload_id,
            expires=expires,
            upload_expires=iso(now + UNFINISHED_UPLOAD_LIFETIME),
        )

    def create_upload(
        self, name: str, project_id: str, upload_id: str, expires: str, hashes: dict[str, str],
        now: datetime, inline: dict[str, str] | None = None,
    ) -> Object:
        """createUpload: start (or repeat) an upload; with ``inline`` data, store it too."""
        blob = None
        if inline is not None:
            data = _decode_inline(inline["objectData"])
            blob = self.new_blob_key()
            self.blobs.put(blob, data)

        def create() -> tuple[Object, str | None]:
            obj = self.start(name, project_id, upload_id, expires, now)
            if obj is None:
                obj = self.log.get(object_key(name))
            obj.declare_hashes(hashes)
            replaced = None
            if blob is not None:
                replaced = obj.receive_data(
                    upload_id, blob, "dataInline", inline["contentType"], len(data), measure(data)
                )
            self.log.save(obj)
            return obj, replaced

        obj, replaced = self._with_blob(blob, create)
        return obj

    def receive_data(
        self, name: str, upload_id: str, blob: str, content_type: str, content_length: int,
        measured: dict[str, str],
    ) -> None:
        """Data arrived by a PUT to a signed URL and is stored under ``blob``."""

        def receive() -> tuple[None, str | None]:
            obj = self.log.get(object_key(name))
            if obj is None:
                raise NotFound(f'Object "{name}" not found')
            replaced = obj.receive_data(upload_id, blob, "putUrl", content_type, content_length, measured)
            self.log.save(obj)
            return None, replaced

        self._with_blob(blob, receive)

    def finish_upload(self, name: str, project_id: str, upload_id: str, hashes: dict[str, str]) -> Object:
        def finish() -> Object:
            obj = self.log.get(object_key(name))
            if obj is None or obj.expired:
                raise NotFound(f'Object "{name}" not found')
            if obj.finish(project_id, upload_id, hashes):
                self.log.save(obj)
            return obj

        return self.log.command(finish)

    def expire(self, name: str) -> None:
        def expire() -> str | None:
            obj = self.log.get(object_key(name))
            if obj is None:
                return None
            blob = obj.expire()
            self.log.save(obj)
            return blob

        blob = self.log.command(expire)
        if blob is not None:
            self._delete(blob)

    def _with_blob(self, blob: str | None, command: Any) -> Any:
        try:
            result, replaced = self.log.command(command)
        except BaseException:
            if blob is not None:
                self._delete(blob)
            raise
        if replaced is not None and replaced != blob:
            self._delete(replaced)
        return result, replaced

    def _delete(self, blob: str) -> None:
        try:
            self.blobs.delete(blob)
        except Exception:
            log.exception("could not delete blob %s; it is left behind", blob)


def _decode_inline(text: str) -> bytes:
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("objectData is not valid base64") from None
    if len(data) > DATA_INLINE_MAX:
        raise InvalidInput(f"dataInline uploads are limited to {DATA_INLINE_MAX} bytes")
    return data
