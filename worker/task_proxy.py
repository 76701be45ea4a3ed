"""taskclusterProxy: a local HTTP proxy that signs a task's API calls with its credentials.

It behaves as Taskcluster's taskcluster-proxy does for a task:

- ``<proxy>/<service>/<version>/<path>`` (or ``<proxy>/api/<service>/...``)
  goes to ``<rootUrl>/api/<service>/<version>/<path>`` with the same method,
  query, body and headers, signed with a Hawk header made from the run's
  temporary credentials — so a task calls the services with its ``scopes``
  without ever seeing a secret. The response comes back as it is: status
  (redirects included, not followed), headers and body. Only hop-by-hop
  headers are dropped, and the task's own ``Authorization``, which the
  proxy's replaces.
- ``POST <proxy>/bewit`` with a URL as its body answers ``303 See Other``
  with that URL signed by a bewit (valid for an hour) in ``Location``, so
  that a tool without Hawk can fetch a private artifact.
- A server error (5xx) or a failed connection is retried with exponential
  backoff and jitter, up to ``RETRIES`` times; the last answer is passed
  back as it is. Every Taskcluster API call is idempotent, which is why
  taskcluster-proxy retries them whatever their method, and so does this.
- The credentials are read for every attempt: a reclaim replaces them, and
  the next request already uses the new ones.

Every response carries taskcluster-proxy's informational headers: which
client signed (``X-Taskcluster-Proxy-Temp-ClientId`` and its scopes, or
``X-Taskcluster-Proxy-Perm-ClientId``) and where the request went
(``X-Taskcluster-Endpoint``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
from collections.abc import Callable
from importlib import metadata
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from cairn.worker.hawk_signing import bewit_url, hawk_header

log = logging.getLogger("cairn.worker")

SERVICE_PATH = re.compile(r"^/(?:api/)?([a-z][a-z0-9-]*)/(v[0-9]+)/(.*)$")
#: Headers that describe one connection, not the message (RFC 9110 §7.6.1), and those the proxy recomputes.
HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te",
    "trailer", "transfer-encoding", "upgrade", "host", "content-length",
})
#: Headers aiohttp would add on its own; left out unless the task sent them, so that what arrives is what it sent.
AUTOMATIC = ("Accept", "Accept-Encoding", "User-Agent", "Content-Type")
RETRIES = 5
#: The first retry waits about this long; each next one twice as long, at most ``BACKOFF_LIMIT``.
BACKOFF_BASE = 0.1
BACKOFF_LIMIT = 10.0


def _version() -> str:
    try:
        return metadata.version("cairn")
    except metadata.PackageNotFoundError:
        return "unknown"


class TaskProxy:
    def __init__(self, root_url: str, credentials: Callable[[], dict[str, Any]], session: aiohttp.ClientSession,
                 retries: int = RETRIES, backoff_base: float = BACKOFF_BASE):
        self.root_url = root_url.rstrip("/")
        self.credentials = credentials
        # The task's session gives its connection pool; bodies are passed on as they come (no decompression).
        self.session = session
        self.retries = retries
        self.backoff_base = backoff_base
        self.url = ""
        app = web.Application(client_max_size=1024**3)
        app.router.add_route("*", "/bewit", self._bewit)
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

    async def _bewit(self, request: web.Request) -> web.Response:
        credentials = self.credentials()
        headers = _identity(credentials)
        if request.method != "POST":
            return _error(request, 405, "MethodNotAllowed", "POST the URL to sign to /bewit", headers)
        target = (await request.read()).decode(errors="replace").strip()
        parts = urlsplit(target)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return _error(request, 400, "InputError", f"Not an absolute http(s) URL to sign: {target[:200]!r}", headers)
        signed = bewit_url(credentials, target)
        headers["Location"] = signed
        return web.Response(status=303, text=signed, headers=headers)

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        path, _, query = request.raw_path.partition("?")
        found = SERVICE_PATH.match(path)
        if found is None:
            return _error(request, 404, "ResourceNotFound", "Expected /<service>/<version>/<path>, or POST /bewit",
                          _identity(self.credentials()))
        service, version, rest = found.groups()
        target = f"{self.root_url}/api/{service}/{version}/{rest}" + (f"?{query}" if query else "")
        body = await request.read()
        passed = CIMultiDict((k, v) for k, v in request.headers.items()
                             if k.lower() not in HOP_BY_HOP and k.lower() != "authorization")
        content_type = request.headers.get("Content-Type", "")
        skipped = [name for name in AUTOMATIC if name not in request.headers]
        attempt = 0
        while True:
            credentials = self.credentials()
            headers = CIMultiDict(passed)
            headers["Authorization"] = hawk_header(credentials, request.method, target, body, content_type)
            try:
                async with self.session.request(
                    request.method, URL(target, encoded=True), data=body or None, headers=headers,
                    skip_auto_headers=skipped, allow_redirects=False, auto_decompress=False,
                ) as response:
                    data = await response.read()
                    if response.status >= 500 and attempt < self.retries:
                        problem = f"HTTP {response.status}"
                    else:
                        returned = CIMultiDict((k, v) for k, v in response.headers.items()
                                               if k.lower() not in HOP_BY_HOP)
                        returned.update(_identity(credentials))
                        returned["X-Taskcluster-Endpoint"] = target
                        return web.Response(status=response.status, body=data, headers=returned)
            except (aiohttp.ClientError, asyncio.TimeoutError) as e:
                if attempt >= self.retries:
                    return _error(request, 502, "ProxyError",
                                  f"{request.method} {target} failed after {attempt + 1} attempts: {e}",
                                  {**_identity(credentials), "X-Taskcluster-Endpoint": target})
                problem = f"{type(e).__name__}: {e}"
            attempt += 1
            delay = min(self.backoff_base * 2 ** (attempt - 1), BACKOFF_LIMIT) * random.uniform(0.5, 1.5)
            log.info("taskclusterProxy: %s %s: %s; retry %d of %d in %.2f s",
                     request.method, target, problem, attempt, self.retries, delay)
            await asyncio.sleep(delay)


def _identity(credentials: dict[str, Any]) -> dict[str, str]:
    """taskcluster-proxy's headers naming the client that signs."""
    plain = {k: v.decode() if isinstance(v, bytes) else v for k, v in credentials.items()}
    headers = {"X-Taskcluster-Proxy-Version": _version()}
    certificate = plain.get("certificate")
    if certificate:
        scopes = (json.loads(certificate) if isinstance(certificate, str) else certificate).get("scopes", [])
        headers["X-Taskcluster-Proxy-Temp-ClientId"] = plain["clientId"]
        headers["X-Taskcluster-Proxy-Temp-Scopes"] = json.dumps(scopes)
    else:
        headers["X-Taskcluster-Proxy-Perm-ClientId"] = plain["clientId"]
    return headers


def _error(request: web.Request, status: int, code: str, message: str, headers: dict[str, str]) -> web.Response:
    body = {"code": code, "message": message, "requestInfo": {"method": request.method, "path": request.path}}
    return web.json_response(body, status=status, headers=headers)
