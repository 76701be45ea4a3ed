"""The artifacts and objects views, as the API and the reaper read them."""

from __future__ import annotations

from typing import Any

import orjson

from cairn.projections.read_model import ReadModel


def _artifact(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "taskId": row["task_id"],
        "runId": int(row["run_id"]),
        "name": row["name"],
        "storageType": row["storage_type"],
        "contentType": row["content_type"],
        "contentLength": None if row["content_length"] is None else int(row["content_length"]),
        "expires": row["expires"],
        "present": bool(row["present"]),
        "details": orjson.loads(row["details"]),
    }


def _object(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": row["name"],
        "projectId": row["project_id"],
        "uploadId": row["upload_id"],
        "finished": row["upload_id"] is None,
        "expires": row["expires"],
        "blobKey": row["blob_key"],
        "contentType": row["content_type"],
        "contentLength": None if row["content_length"] is None else int(row["content_length"]),
        "hashes": orjson.loads(row["hashes"]),
    }


class StorageReadModel(ReadModel):
    def artifact(self, task_id: str, run_id: int, name: str) -> dict[str, Any] | None:
        rows = self._rows("get_artifact", {"task_id": task_id, "run_id": run_id, "name": name})
        return _artifact(rows[0]) if rows else None

    def artifacts(self, task_id: str, run_id: int, after: str, limit: int) -> list[dict[str, Any]]:
        rows = self._rows(
            "list_artifacts", {"task_id": task_id, "run_id": run_id, "after": after, "limit": limit}
        )
        return [_artifact(r) for r in rows]

    def expired_artifacts(self, now: str, limit: int) -> list[tuple[str, int, str]]:
        rows = self._rows("expired_artifacts", {"now": now, "limit": limit})
        return [(r["task_id"], int(r["run_id"]), r["name"]) for r in rows]

    def object(self, name: str) -> dict[str, Any] | None:
        rows = self._rows("get_object", {"name": name})
        return _object(rows[0]) if rows else None

    def expired_objects(self, now: str, limit: int) -> list[str]:
        return [r["name"] for r in self._rows("expired_objects", {"now": now, "limit": limit})]
