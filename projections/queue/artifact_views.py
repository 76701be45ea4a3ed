"""The artifacts view, kept in the transaction of every artifact event.

One row per unexpired artifact of every run, with what listArtifacts shows
and what a download needs (``details``). Reads never load the task: the
row is exactly as current as the events, since it commits with them.
"""

from __future__ import annotations

from typing import Any

import orjson

from cairn.domain.queue.task import Task
from cairn.projections.projection import Projection
from cairn.projections.store.session import SqlSession


def _task_id(e: Any) -> str:
    return e.originator_id.removeprefix("task/")


class ArtifactViews(Projection):
    name = "artifacts"
    tables = ("artifacts",)

    def register(self) -> None:
        self.on(Task.ArtifactCreated, self.created)
        self.on(Task.ArtifactReplaced, self.replaced)
        self.on(Task.ArtifactFinished, self.finished)
        self.on(Task.ArtifactExpired, self.expired)

    def created(self, session: SqlSession, e: Any, _: Any) -> None:
        session.run(
            "insert_artifact",
            {
                "task_id": _task_id(e),
                "run_id": e.run_id,
                "name": e.name,
                "storage_type": e.storage_type,
                "content_type": e.content_type,
                "content_length": e.content_length,
                "expires": e.expires,
                "present": e.storage_type != "object",
                "details": orjson.dumps(e.details).decode(),
            },
        )

    def replaced(self, session: SqlSession, e: Any, _: Any) -> None:
        session.run(
            "replace_artifact",
            {
                "task_id": _task_id(e),
                "run_id": e.run_id,
                "name": e.name,
                "storage_type": e.storage_type,
                "expires": e.expires,
                "details": orjson.dumps(e.details).decode(),
            },
        )

    def finished(self, session: SqlSession, e: Any, _: Any) -> None:
        session.run("finish_artifact", {"task_id": _task_id(e), "run_id": e.run_id, "name": e.name})

    def expired(self, session: SqlSession, e: Any, _: Any) -> None:
        session.run("delete_artifact", {"task_id": _task_id(e), "run_id": e.run_id, "name": e.name})
