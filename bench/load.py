"""An efficient load generator: many task lifecycles at once, as cheap for the client as we can make them.

Each of ``concurrency`` coroutines loops createTask → claimWork →
reportCompleted on one shared task queue (a scheduler and a worker pool on
one worker type: a worker completes whichever task it was handed). Requests
go over aiohttp with HTTP/1.1 keep-alive and a pool bounded at one
connection per coroutine, and every request carries a real Hawk header made
for it (fresh timestamp and nonce, payload hash), so the server does all the
work it would do for the official client.

The headers come from :class:`HawkSigner`, which makes the same header mohawk
makes for the official client (checked by :func:`check_signer` before every
run) without mohawk's per-call debug formatting.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Self

import aiohttp
import mohawk
import orjson
import taskcluster
import yarl

from bench.lifecycle import definition

JSON = "application/json"


class LoadError(Exception):
    """The server answered a lifecycle request with an error."""


class HawkSigner:
    """Hawk Authorization headers for one client, as mohawk.Sender makes them (sha256, no ext)."""

    def __init__(self, client_id: str, access_token: str, root_url: str):
        parts = urllib.parse.urlsplit(root_url)
        self.client_id = client_id
        self.key = access_token.encode("ascii")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)

    def header(self, method: str, resource: str, body: bytes = b"", content_type: str = "") -> str:
        nonce = base64.urlsafe_b64encode(os.urandom(6))[:6].decode()
        return self.sign(method, resource, body, content_type, str(int(time.time())), nonce)

    def sign(self, method: str, resource: str, body: bytes, content_type: str, ts: str, nonce: str) -> str:
        payload = b"hawk.1.payload\n" + content_type.encode() + b"\n" + body + b"\n"
        payload_hash = base64.b64encode(hashlib.sha256(payload).digest()).decode()
        normalized = f"hawk.1.header\n{ts}\n{nonce}\n{method}\n{resource}\n{self.host}\n{self.port}\n{payload_hash}\n\n"
        mac = base64.b64encode(hmac.new(self.key, normalized.encode(), hashlib.sha256).digest()).decode()
        return f'Hawk mac="{mac}", hash="{payload_hash}", id="{self.client_id}", ts="{ts}", nonce="{nonce}"'


def check_signer(signer: HawkSigner, root_url: str, access_token: str) -> None:
    """Raise unless the signer's headers equal mohawk's, for a request with a body and one without."""
    cases = [("PUT", "/api/queue/v1/task/abc", orjson.dumps({"a": [1, "é"]}), JSON),
             ("POST", "/api/queue/v1/task/abc/runs/0/completed", b"", ""),
             ("GET", "/api/queue/v1/claim-work/a%2Fb?x=1", b"", "")]
    for method, resource, body, content_type in cases:
        expected = mohawk.Sender(
            {"id": signer.client_id, "key": access_token, "algorithm": "sha256"},
            root_url + resource, method, content=body.decode(), content_type=content_type,
            ext={}, nonce="n0Nc3x", _timestamp=1700000000,
        ).request_header
        made = signer.sign(method, resource, body, content_type, "1700000000", "n0Nc3x")
        if made != expected:
            raise AssertionError(f"Hawk header differs from mohawk's:\n{made}\n{expected}")


@dataclass
class Segment:
    """One timed batch of lifecycles."""

    lifecycles: int
    seconds: float
    latencies: list[float] = field(repr=False)

    @property
    def per_second(self) -> float:
        return self.lifecycles / self.seconds


class LoadGenerator:
    """``concurrency`` lifecycles in flight at once against one server; use inside ``async with``."""

    def __init__(self, root_url: str, client_id: str, access_token: str, task_queue_id: str,
                 concurrency: int = 64):
        self.root_url = root_url
        self.signer = HawkSigner(client_id, access_token, root_url)
        check_signer(self.signer, root_url, access_token)
        self.concurrency = concurrency
        self.task_queue_id = task_queue_id
        self.claim_path = "/api/queue/v1/claim-work/" + urllib.parse.quote(task_queue_id, safe="")
        self.claim_body = orjson.dumps({"workerGroup": "bench", "workerId": "load", "tasks": 1})
        self.session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Self:
        connector = aiohttp.TCPConnector(limit=self.concurrency, force_close=False)
        # No automatic Content-Type: a bodiless POST must say none, as the official client does,
        # or its Hawk payload hash would not match.
        self.session = aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60),
                                             skip_auto_headers=("Content-Type",))
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.session.close()

    async def _call(self, method: str, path: str, body: bytes = b"") -> Any:
        headers = {"Authorization": self.signer.header(method, path, body, JSON if body else "")}
        if body:
            headers["Content-Type"] = JSON
        url = yarl.URL(self.root_url + path, encoded=True)
        async with self.session.request(method, url, data=body or None, headers=headers) as response:
            answer = await response.read()
            if response.status != 200:
                raise LoadError(f"{method} {path}: {response.status} {answer[:300]!r}")
            return orjson.loads(answer)

    async def lifecycle(self) -> None:
        task_id = taskcluster.slugId()
        await self._call("PUT", f"/api/queue/v1/task/{task_id}", orjson.dumps(definition(self.task_queue_id)))
        claimed: list[dict[str, Any]] = []
        while not claimed:  # another worker may have taken "our" task; wait for the next one
            claimed = (await self._call("POST", self.claim_path, self.claim_body))["tasks"]
        status = claimed[0]["status"]
        await self._call("POST", f"/api/queue/v1/task/{status['taskId']}/runs/{claimed[0]['runId']}/completed")

    async def current_scopes(self) -> None:
        """One authenticated request that changes nothing: the cost of a request around the work it asks for."""
        await self._call("GET", "/api/auth/v1/scopes/current")

    async def run(self, count: int, unit: str = "lifecycle") -> Segment:
        """Run ``count`` lifecycles (or calls of the method named ``unit``), ``concurrency`` at a time."""
        one = getattr(self, unit)
        remaining = count
        latencies: list[float] = []

        async def loop() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                started = time.perf_counter()
                await one()
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(loop() for _ in range(min(self.concurrency, count))))
        return Segment(count, time.perf_counter() - started, latencies)
