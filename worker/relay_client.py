"""Cairn's relay service, as the official ``taskcluster`` client would call it.

The relay is Cairn's own service (Taskcluster has none), so the client
class is written out here as the client's generated ones are, from its
API reference's entries (``RELAY_REFERENCE``; a synchronous client is
``taskcluster.client.createApiClient("Relay", RELAY_REFERENCE)``). Also the Hawk header that signs a websocket's opening
request, which the client has no method for.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import mohawk
import taskcluster.aio
from taskcluster.aio.asyncclient import AsyncBaseClient

RELAY_REFERENCE = {
    "reference": {
        "serviceName": "relay",
        "apiVersion": "v1",
        "title": "Relay API",
        "description": "What a running task's worker sends out through Cairn.",
        "entries": [
            {
                "type": "function",
                "name": "appendLog",
                "method": "post",
                "route": "/task/<taskId>/runs/<runId>/log",
                "args": ["taskId", "runId"],
                "query": [],
                "input": "v1/append-log-request.json#",
                "output": "v1/append-log-response.json#",
                "stability": "experimental",
            },
        ],
    }
}



class Relay(AsyncBaseClient):
    classOptions: dict[str, Any] = {}
    serviceName = "relay"
    apiVersion = "v1"
    funcinfo = {entry["name"]: entry for entry in RELAY_REFERENCE["reference"]["entries"]}

    async def appendLog(self, *args: Any, **kwargs: Any) -> Any:
        """Add bytes at an offset of a run's live log."""
        return await self._makeApiCall(self.funcinfo["appendLog"], *args, **kwargs)


def relay_client(root_url: str, credentials: dict[str, str], session: aiohttp.ClientSession) -> Any:
    """A relay client with ``credentials`` (a copy: the client turns their values into bytes)."""
    return Relay({"rootUrl": root_url, "credentials": dict(credentials), "maxRetries": 5}, session=session)


def websocket_headers(root_url: str, credentials: dict[str, str], url: str) -> dict[str, str]:
    """The Hawk ``Authorization`` header for opening the websocket at ``url`` (an http(s) URL)."""
    ext = taskcluster.aio.Queue({"rootUrl": root_url, "credentials": dict(credentials)}).makeHawkExt()
    sender = mohawk.Sender(
        credentials={"id": credentials["clientId"], "key": credentials["accessToken"], "algorithm": "sha256"},
        ext=ext or {},
        url=url,
        method="GET",
        content="",
        content_type="",
        always_hash_content=False,
    )
    return {"Authorization": sender.request_header}
