"""What an upload told the object service its data's hashes were.

The official client's upload helper measures the data as it sends it and
declares the hashes when it finishes the upload; the object service refuses
to finish an upload whose data does not match them. Handing the helper this
wrapper instead of the object client keeps those declared hashes, so that
what the worker later signs (``worker/chain_of_trust.py``) is exactly what
the object service recorded, with no second reading of the file.
"""

from __future__ import annotations

from typing import Any


class HashRecordingObjects:
    """The object service as the upload helper sees it, keeping the hashes declared on finishing."""

    def __init__(self, objects: Any):
        self.objects = objects
        self.hashes: dict[str, str] = {}

    async def createUpload(self, *args: Any, **kwargs: Any) -> Any:
        return await self.objects.createUpload(*args, **kwargs)

    async def finishUpload(self, name: str, request: dict[str, Any]) -> Any:
        self.hashes = dict(request["hashes"])
        return await self.objects.finishUpload(name, request)
