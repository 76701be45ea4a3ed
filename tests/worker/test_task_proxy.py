"""The task proxy against a scripted upstream: headers both ways, retries with backoff, fresh credentials.

The upstream is a real HTTP server on loopback that checks each request's
Hawk signature as Taskcluster's services do, and answers as each test tells
it (here: server errors on demand, which Cairn itself cannot be made to give).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import mohawk
import pytest
from aiohttp import web
from mohawk.bewit import check_bewit
from yarl import URL

from cairn.worker.task_proxy import TaskProxy

ALICE = {"clientId": "alice", "accessToken": "alice-secret"}
BOB = {"clientId": "bob", "accessToken": "bob-secret"}
SECRETS = {"alice": "alice-secret", "bob": "bob-secret"}


class Upstream:
    """Records every request, checks its Hawk header, and answers with ``respond(request)``."""

    def __init__(self, respond: Callable[[web.Request, bytes], web.Response]):
        self.respond = respond
        self.seen: list[dict[str, Any]] = []
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self._handle)
        self.runner = web.AppRunner(app, access_log=None)
        self.root_url = ""

    async def start(self) -> None:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        host, port = self.runner.addresses[0][:2]
        self.root_url = f"http://{host}:{port}"

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        receiver = mohawk.Receiver(
            lambda client_id: {"id": client_id, "key": SECRETS[client_id], "algorithm": "sha256"},
            request.headers["Authorization"],
            str(request.url),
            request.method,
            content=body,
            content_type=request.headers.get("Content-Type", ""),
            seen_nonce=None,
        )
        self.seen.append({
            "method": request.method, "path": request.raw_path, "headers": request.headers.copy(),
            "body": body, "client": receiver.resource.credentials["id"],
        })
        return self.respond(request, body)


async def through_proxy(respond, calls, credentials=lambda: ALICE, **proxy_options) -> tuple[Upstream, list[Any]]:
    upstream = Upstream(respond)
    await upstream.start()
    async with aiohttp.ClientSession() as session:
        proxy = TaskProxy(upstream.root_url, credentials, session, backoff_base=0.01, **proxy_options)
        await proxy.start()
        try:
            results = [await call(session, proxy.url) for call in calls]
        finally:
            await proxy.stop()
            await upstream.runner.cleanup()
    return upstream, results


async def fetch(session: aiohttp.ClientSession, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
    # encoded=True: sent exactly as written (aiohttp would otherwise normalise %2F in a query to /).
    async with session.request(method, URL(url, encoded=True), allow_redirects=False, **kwargs) as response:
        return {"status": response.status, "headers": response.headers.copy(), "body": await response.read()}


def test_headers_pass_through_both_ways_and_the_request_is_signed():
    def respond(request: web.Request, body: bytes) -> web.Response:
        response = web.Response(status=201, body=b'{"made": true}', content_type="application/json")
        response.headers["ETag"] = '"v1"'
        response.headers["X-Upstream"] = "kept"
        response.headers.add("Set-Cookie", "a=1")
        response.headers.add("Set-Cookie", "b=2")
        return response

    async def call(session, proxy_url):
        return await fetch(session, "PUT", f"{proxy_url}/queue/v1/task/abc?x=1&y=%2F", data=b'{"a": 1}', headers={
            "Content-Type": "application/json",
            "If-None-Match": '"v0"',
            "X-Custom": "passed",
            "Accept-Encoding": "identity",
            "Authorization": "Bearer the-task-s-own",
        })

    upstream, (result,) = asyncio.run(through_proxy(respond, [call]))
    (seen,) = upstream.seen
    assert (seen["method"], seen["path"], seen["body"]) == ("PUT", "/api/queue/v1/task/abc?x=1&y=%2F", b'{"a": 1}')
    assert seen["client"] == "alice"
    assert seen["headers"]["X-Custom"] == "passed"
    assert seen["headers"]["If-None-Match"] == '"v0"'
    assert seen["headers"]["Authorization"].startswith("Hawk ")
    assert seen["headers"]["Accept-Encoding"] == "identity"

    assert result["status"] == 201
    assert result["body"] == b'{"made": true}'
    headers = result["headers"]
    assert headers["Content-Type"] == "application/json"
    assert (headers["ETag"], headers["X-Upstream"]) == ('"v1"', "kept")
    assert headers.getall("Set-Cookie") == ["a=1", "b=2"]
    assert headers["X-Taskcluster-Proxy-Perm-ClientId"] == "alice"
    assert headers["X-Taskcluster-Endpoint"].endswith("/api/queue/v1/task/abc?x=1&y=%2F")


def test_redirects_come_back_unfollowed():
    def respond(request: web.Request, body: bytes) -> web.Response:
        return web.Response(status=303, headers={"Location": "https://storage.example/object"})

    async def call(session, proxy_url):
        return await fetch(session, "GET", f"{proxy_url}/api/queue/v1/task/abc/artifacts/public/x")

    upstream, (result,) = asyncio.run(through_proxy(respond, [call]))
    assert (result["status"], result["headers"]["Location"]) == (303, "https://storage.example/object")
    assert len(upstream.seen) == 1


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_server_errors_are_retried_with_backoff_until_one_succeeds(method):
    answers = iter([503, 500, 200])

    def respond(request: web.Request, body: bytes) -> web.Response:
        status = next(answers)
        return web.json_response({"status": status, "body": body.decode()}, status=status)

    async def call(session, proxy_url):
        return await fetch(session, method, f"{proxy_url}/queue/v1/ping", data=b"same body" if method == "POST" else None)

    upstream, (result,) = asyncio.run(through_proxy(respond, [call]))
    assert result["status"] == 200
    assert [s["method"] for s in upstream.seen] == [method] * 3
    if method == "POST":
        assert {s["body"] for s in upstream.seen} == {b"same body"}


def test_a_server_error_that_persists_is_passed_back_as_it_is():
    def respond(request: web.Request, body: bytes) -> web.Response:
        return web.json_response({"code": "InternalServerError", "message": "down"}, status=500)

    async def call(session, proxy_url):
        return await fetch(session, "GET", f"{proxy_url}/queue/v1/ping")

    upstream, (result,) = asyncio.run(through_proxy(respond, [call], retries=3))
    assert len(upstream.seen) == 4
    assert result["status"] == 500
    assert json.loads(result["body"])["message"] == "down"


def test_client_errors_are_not_retried():
    def respond(request: web.Request, body: bytes) -> web.Response:
        return web.json_response({"code": "InsufficientScopes", "message": "no"}, status=403)

    async def call(session, proxy_url):
        return await fetch(session, "GET", f"{proxy_url}/queue/v1/ping")

    upstream, (result,) = asyncio.run(through_proxy(respond, [call]))
    assert (len(upstream.seen), result["status"]) == (1, 403)


def test_an_unreachable_service_is_retried_then_reported():
    async def scenario() -> dict[str, Any]:
        async with aiohttp.ClientSession() as session:
            # A port nothing listens on.
            closed = web.AppRunner(web.Application())
            await closed.setup()
            site = web.TCPSite(closed, "127.0.0.1", 0)
            await site.start()
            host, port = closed.addresses[0][:2]
            await closed.cleanup()
            proxy = TaskProxy(f"http://{host}:{port}", lambda: ALICE, session, retries=2, backoff_base=0.01)
            await proxy.start()
            try:
                started = time.monotonic()
                result = await fetch(session, "GET", f"{proxy.url}/queue/v1/ping")
                result["took"] = time.monotonic() - started
                return result
            finally:
                await proxy.stop()

    result = asyncio.run(scenario())
    assert result["status"] == 502
    error = json.loads(result["body"])
    assert error["code"] == "ProxyError"
    assert "after 3 attempts" in error["message"]
    assert error["requestInfo"] == {"method": "GET", "path": "/queue/v1/ping"}


def test_each_request_is_signed_with_the_latest_credentials():
    current = [ALICE]

    def respond(request: web.Request, body: bytes) -> web.Response:
        return web.json_response({})

    async def first(session, proxy_url):
        result = await fetch(session, "GET", f"{proxy_url}/queue/v1/ping")
        current[0] = BOB  # a reclaim replaced the run's credentials
        return result

    async def second(session, proxy_url):
        return await fetch(session, "GET", f"{proxy_url}/queue/v1/ping")

    upstream, results = asyncio.run(through_proxy(respond, [first, second], credentials=lambda: current[0]))
    assert [s["client"] for s in upstream.seen] == ["alice", "bob"]
    assert [r["headers"]["X-Taskcluster-Proxy-Perm-ClientId"] for r in results] == ["alice", "bob"]


def test_bewit_signs_a_url_with_the_task_credentials():
    target = "https://cairn.example/api/queue/v1/task/abc/artifacts/private/build.log?x=1"

    async def sign(session, proxy_url):
        return await fetch(session, "POST", f"{proxy_url}/bewit", data=f"  {target}\n".encode())

    async def refused(session, proxy_url):
        return [await fetch(session, "POST", f"{proxy_url}/bewit", data=b"not a url"),
                await fetch(session, "GET", f"{proxy_url}/bewit")]

    upstream, (signed, (not_a_url, not_a_post)) = asyncio.run(through_proxy(lambda r, b: web.Response(), [sign, refused]))
    assert upstream.seen == []
    assert signed["status"] == 303
    location = signed["headers"]["Location"]
    assert location.startswith(target + "&bewit=")
    assert signed["body"].decode() == location
    # Taskcluster's clients leave out the base64 padding; mohawk wants it back.
    base, bewit = location.split("&bewit=")
    padded = f"{base}&bewit={bewit}{'=' * (-len(bewit) % 4)}"
    assert check_bewit(padded, lambda client_id: {"id": client_id, "key": SECRETS[client_id], "algorithm": "sha256"})
    assert (not_a_url["status"], json.loads(not_a_url["body"])["code"]) == (400, "InputError")
    assert not_a_post["status"] == 405


def test_paths_outside_the_services_are_not_found():
    async def call(session, proxy_url):
        return await fetch(session, "GET", f"{proxy_url}/favicon.ico")

    upstream, (result,) = asyncio.run(through_proxy(lambda r, b: web.Response(), [call]))
    assert upstream.seen == []
    assert (result["status"], json.loads(result["body"])["code"]) == (404, "ResourceNotFound")
