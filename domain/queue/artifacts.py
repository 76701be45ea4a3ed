"""Artifacts: what a run leaves behind, by name, and how to fetch it.

An artifact is part of its task: created, finished and expired by events of
the Task aggregate (see ``Task.create_artifact``). What it holds depends on
its storage type:

- ``object``: data in the object service, under :func:`object_name`; the
  artifact is present only once ``finishArtifact`` confirms the upload;
- ``s3``: data PUT to a signed URL the queue hands out (Cairn keeps it in
  its own blob store, as a bucket would);
- ``reference``: a URL that fetches redirect to;
- ``link``: another artifact of the same run, fetched in its place;
- ``error``: a reason and message that every fetch answers with 424.

Artifacts cannot be overwritten, but repeating a creation is harmless, and
three changes are allowed (:func:`replacement_allowed`): a reference may
change its URL, a link may replace a reference, and any artifact may expire
later than it was going to.
"""

from __future__ import annotations

import hashlib
import mimetypes
from datetime import timedelta
from typing import Any

STORAGE_TYPES = ("s3", "object", "reference", "link", "error")
#: Runs resolved as exception still take artifacts for this long (logs, mostly).
EXCEPTION_GRACE = timedelta(minutes=25)
#: How far in the past an artifact's expiry may be, for clock drift.
EXPIRES_SKEW = timedelta(minutes=15)
DEFAULT_CONTENT_TYPE = "application/binary"


def content_type_of(name: str) -> str:
    """The content type of an artifact created without one: guessed from its name."""
    guessed, _ = mimetypes.guess_type(name, strict=False)
    return guessed or DEFAULT_CONTENT_TYPE


def object_name(task_id: str, run_id: int, name: str) -> str:
    """The name of an object artifact's data in the object service; never changes."""
    return f"t/{task_id}/{run_id}/{name}"


def s3_blob_key(task_id: str, run_id: int, name: str) -> str:
    """The blob holding an ``s3`` artifact's data: one per artifact, overwritten by a new PUT."""
    return "s3/" + hashlib.sha256(f"{task_id}/{run_id}/{name}".encode()).hexdigest()


def details_of(request: dict[str, Any]) -> dict[str, Any]:
    """The storage-specific part of a createArtifact request."""
    kind = request["storageType"]
    if kind == "reference":
        return {"url": request["url"]}
    if kind == "link":
        return {"artifact": request["artifact"]}
    if kind == "error":
        return {"reason": request["reason"], "message": request["message"]}
    return {}


def replacement_allowed(original: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether ``new`` may take the place of an existing artifact ``original``.

    Both are ``{storageType, contentType, expires, details}``; ``expires`` in
    the canonical ISO form, so that strings compare as times.
    """
    if new["storageType"] != "link" and original["contentType"] != new["contentType"]:
        return False
    if new["expires"] < original["expires"]:
        return False
    if original["storageType"] == new["storageType"]:
        if original["storageType"] == "object":
            # The object service fixed the data's expiry when the upload began.
            return original["expires"] == new["expires"]
        return original["storageType"] == "reference" or original["details"] == new["details"]
    return original["storageType"] == "reference" and new["storageType"] == "link"


def public_view(artifact: dict[str, Any]) -> dict[str, Any]:
    """An artifact as listArtifacts and artifactInfo show it."""
    shown = {
        "storageType": artifact["storageType"],
        "name": artifact["name"],
        "expires": artifact["expires"],
        "contentType": artifact["contentType"],
    }
    if artifact.get("contentLength") is not None:
        shown["contentLength"] = artifact["contentLength"]
    return shown
