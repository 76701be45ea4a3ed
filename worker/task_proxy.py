"""taskclusterProxy: a local HTTP proxy that signs a task's API calls with its credentials.

As Taskcluster's taskcluster-proxy does, a request to
``<proxy>/<service>/<version>/<path>`` (or ``<proxy>/api/<service>/...``)
goes to ``<rootUrl>/api/<service>/<version>/<path>`` with the same method,
query and body, and a Hawk header made from the run's temporary credentials
— so a task can call the services with its ``scopes`` without ever seeing a
secret. The credentials are read per request: a reclaim replaces them.
Responses, redirects included, come back as they are.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import aiohttp
import mohawk
from aiohttp import web
from taskcluster import utils
from yarl import URL

SERVICE_PATH = re.compile(r"^/(?:api/)?([a-z][a-z0-9-]*)/(v[0-9]+)/(.*)$")
PASSED_BACK = ("Content-Type", "Location", "Cache-Control", "ETag", "Last-Modified")


class TaskProxy:
    def __init__(self, root_url: str, credentials: Callable[[], dict[str, str]], session: aiohttp.ClientSession):
        self.root_url = root_url.rstrip("/")
        self.credentials = credentials
        self.session = session
        self.url = ""
        app = web.Application(client_max_size=1024**3)
        app.router.add_route("*", "/{path:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)

    async def start(self) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"

    async def stop(self) -> None:
        await self._runner.cleanup()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        path, _, query = request.raw_path.partition("?")
        found = SERVICE_PATH.match(path)
        if found is None:
            return web.json_response(
                {"code": "ResourceNotFound", "message": "Expected /<service>/<version>/<path>"}, status=404
            )
        service, version, rest = found.groups()
        target = f"{self.root_url}/api/{service}/{version}/{rest}" + (f"?{query}" if query else "")
        body = await request.read()
        content_type = request.headers.get("Content-Type", "") if body else ""
        headers = {"Authorization": hawk_header(self.credentials(), request.method, target, body, content_type)}
        if content_type:
            headers["Content-Type"] = content_type
        async with self.session.request(
            request.method,
            URL(target, encoded=True),
            data=body or None,
            headers=headers,
            skip_auto_headers=["Content-Type"],
            allow_redirects=False,
        ) as response:
            data = await response.read()
            passed = {k: v for k in PASSED_BACK if (v := response.headers.get(k)) is not None}
            return web.Response(status=response.status, body=data, headers=passed)


def hawk_header(credentials: dict[str, str], method: str, url: str, body: bytes, content_type: str) -> str:
    """A Hawk ``Authorization`` header, made as the taskcluster client makes it."""
    credentials = {k: v.decode() if isinstance(v, bytes) else v for k, v in credentials.items()}
    ext = None
    certificate = credentials.get("certificate")
    if certificate:
        certificate = json.loads(certificate) if isinstance(certificate, str) else certificate
        encoded = utils.encodeStringForB64Header(utils.dumpJson({"certificate": certificate}))
        ext = utils.makeB64UrlSafe(encoded).decode()
    sender = mohawk.Sender(
        credentials={"id": credentials["clientId"], "key": credentials["accessToken"], "algorithm": "sha256"},
        ext=ext,
        url=url,
        method=method,
        content=body,
        content_type=content_type,
    )
    return sender.request_header
