"""The objects view, kept in the transaction of every object event.

One row per unexpired object: what downloads and metadata answer from
(project, expiry, hashes, where the data is), and what the reaper asks
for expiry — of the object, or of an upload left unfinished.
"""

from __future__ import annotations

from typing import Any

import orjson

from cairn.domain.objects.model import Object
from cairn.projections.projection import Projection
from cairn.projections.store.session import SqlSession


def _name(e: Any) -> str:
    return e.originator_id.removeprefix("object/")


class ObjectViews(Projection):
    name = "objects"
    tables = ("objects",)

    def register(self) -> None:
        self.on(Object.UploadStarted, self.started)
        self.on(Object.UploadRestarted, self.restarted)
        self.on(Object.DataReceived, self.data_received)
        self.on(Object.UploadFinished, self.finished)
        self.on(Object.Expired, self.expired)

    def started(self, session: SqlSession, e: Any, _: Any) -> None:
        session.run(
            "insert_object",
            {
                "name": e.name,
                "project_id": e.project_id,
                "upload_id": e.upload_id,
                "expires": e.expires,
                "upload_expires": e.upload_expires,
            },
        )

    def restarted(self, session: SqlSession, e: Any, _: Any) -> None:
        session.run(
            "insert_object",
            {
                "name": _name(e),
                "project_id": e.project_id,
                "upload_id": e.upload_id,
                "expires": e.expires,
                "upload_expires": e.upload_expires,
            },
        )

    def data_received(self, session: SqlSession, e: Any, _: Any) -> None:
        session.run(
            "object_data_received",
            {
                "name": _name(e),
                "blob_key": e.blob_key,
                "content_type": e.content_type,
                "content_length": e.content_length,
            },
        )

    def finished(self, session: SqlSession, e: Any, _: Any) -> None:
        session.run("finish_object", {"name": _name(e), "hashes": orjson.dumps(e.hashes).decode()})

    def expired(self, session: SqlSession, e: Any, _: Any) -> None:
        session.run("delete_object", {"name": _name(e)})
