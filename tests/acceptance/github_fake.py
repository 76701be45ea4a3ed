"""A fake of GitHub's REST API on a loopback port, answering as GitHub documents, recording every call.

Built from GitHub's REST reference (docs.github.com/rest): an app's JWT is
checked with the app's public key (``POST /app/installations/{id}/access_tokens``
answers ``201 {token, expires_at}``); every other call needs ``Authorization:
token <installation token>``. It serves repositories (``GET /repos/{o}/{r}``
with ``default_branch``), files per ref (``GET .../contents/{path}?ref=`` as
``{type: file, encoding: base64, content}``, 404 ``Not Found``), commits by
branch, tag or sha (``GET .../commits/{ref}`` → ``{sha, ...}``, 422 for an
unknown ref), pull requests, collaborator checks (204 or 404), and takes
commit statuses, check runs (create and update), commit comments, issue
comments and reactions, each recorded in :attr:`FakeGithub.calls`.

``fail(method, path_prefix, status, times, headers)`` makes the next calls
fail as GitHub fails (a 502, or a 403 with ``x-ratelimit-remaining: 0``).
"""

from __future__ import annotations

import base64
import json
import hashlib
import itertools
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import jwt
import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

APP_ID = "4242"


def generate_private_key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    ).decode()


#: One key for the whole test session: generating RSA keys costs a noticeable fraction of a second.
PRIVATE_KEY = generate_private_key()


@dataclass
class Call:
    method: str
    path: str
    body: Any
    at: float


@dataclass
class FakeRepo:
    owner: str
    name: str
    default_branch: str = "main"
    #: ref (branch, tag or sha) -> commit sha
    refs: dict[str, str] = field(default_factory=dict)
    #: commit sha -> {path: text}
    trees: dict[str, dict[str, str]] = field(default_factory=dict)
    collaborators: set[str] = field(default_factory=set)
    pulls: dict[int, dict[str, Any]] = field(default_factory=dict)

    def commit(self, files: dict[str, str], branch: str | None = None, sha: str | None = None) -> str:
        sha = sha or hashlib.sha1(secrets.token_bytes(16)).hexdigest()
        self.trees[sha] = dict(files)
        self.refs[sha] = sha
        if branch:
            self.refs[branch] = sha
        return sha


def _not_found() -> JSONResponse:
    return JSONResponse({"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}, 404)


class FakeGithub:
    def __init__(self, private_key: str = PRIVATE_KEY, app_id: str = APP_ID):
        self.app_id = app_id
        self.private_key = private_key
        self.public_key = serialization.load_pem_private_key(private_key.encode(), None).public_key()
        self.repos: dict[str, FakeRepo] = {}
        self.tokens: dict[str, int] = {}
        self.calls: list[Call] = []
        #: Calls answered with an injected failure (body: the status given).
        self.failed_calls: list[Call] = []
        self.failures: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self._ids = itertools.count(1000)
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        routes = [
            Route("/app/installations/{installation_id:int}/access_tokens", self.access_token, methods=["POST"]),
            Route("/repos/{owner}/{repo}", self.repository, methods=["GET"]),
            Route("/repos/{owner}/{repo}/contents/{path:path}", self.contents, methods=["GET"]),
            Route("/repos/{owner}/{repo}/commits/{ref:path}/comments", self.commit_comment, methods=["POST"]),
            Route("/repos/{owner}/{repo}/commits/{ref:path}", self.commit, methods=["GET"]),
            Route("/repos/{owner}/{repo}/pulls/{number:int}", self.pull, methods=["GET"]),
            Route("/repos/{owner}/{repo}/collaborators/{login}", self.collaborator, methods=["GET"]),
            Route("/repos/{owner}/{repo}/statuses/{sha}", self.status, methods=["POST"]),
            Route("/repos/{owner}/{repo}/check-runs", self.create_check_run, methods=["POST"]),
            Route("/repos/{owner}/{repo}/check-runs/{check_run_id:int}", self.update_check_run, methods=["PATCH"]),
            Route("/repos/{owner}/{repo}/issues/{number:int}/comments", self.issue_comment, methods=["POST"]),
            Route("/repos/{owner}/{repo}/issues/comments/{comment_id:int}/reactions", self.reaction,
                  methods=["POST"]),
        ]
        self.app = Starlette(routes=routes, middleware=[Middleware(BaseHTTPMiddleware, dispatch=self._record_and_fail)])
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    # running

    def start(self) -> FakeGithub:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the fake GitHub did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)

    # arranging

    def repo(self, owner: str, name: str, default_branch: str = "main") -> FakeRepo:
        key = f"{owner}/{name}"
        if key not in self.repos:
            self.repos[key] = FakeRepo(owner, name, default_branch)
        return self.repos[key]

    def fail(self, method: str, path_prefix: str, status: int, times: int = 1,
             headers: dict[str, str] | None = None) -> None:
        with self.lock:
            self.failures.append(
                {"method": method, "prefix": path_prefix, "status": status, "times": times, "headers": headers or {}}
            )

    # observing

    def recorded(self, method: str, path_part: str = "") -> list[Call]:
        with self.lock:
            return [c for c in self.calls if c.method == method and path_part in c.path]

    def statuses(self, owner: str, repo: str) -> list[dict[str, Any]]:
        return [c.body for c in self.recorded("POST", f"/repos/{owner}/{repo}/statuses/")]

    def check_runs(self) -> dict[int, dict[str, Any]]:
        """Every check run created, with every update applied, by id."""
        runs: dict[int, dict[str, Any]] = {}
        with self.lock:
            for c in self.calls:
                # A creation gets its id as it is answered: one without is refused, or not answered yet.
                if c.method == "POST" and c.path.endswith("/check-runs") and isinstance(c.body, dict) and "_id" in c.body:
                    runs[c.body["_id"]] = {k: v for k, v in c.body.items() if k != "_id"}
                elif c.method == "PATCH" and "/check-runs/" in c.path:
                    runs.setdefault(int(c.path.rsplit("/", 1)[1]), {}).update(c.body)
        return runs

    def comments(self) -> list[Call]:
        with self.lock:
            return [c for c in self.calls if c.method == "POST" and c.path.endswith("/comments")]

    # the middleware

    async def _record_and_fail(self, request: Request, call_next: Any) -> Response:
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        path = request.url.path
        with self.lock:
            for failure in self.failures:
                if failure["times"] > 0 and failure["method"] == request.method and path.startswith(failure["prefix"]):
                    failure["times"] -= 1
                    self.failed_calls.append(Call(request.method, path, failure["status"], time.time()))
                    return JSONResponse({"message": "Injected failure"}, failure["status"], headers=failure["headers"])
            call = Call(request.method, path, body, time.time())
            self.calls.append(call)
        request.state.call = call
        return await call_next(request)

    # authentication

    def _installation(self, request: Request) -> int | None:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() not in ("token", "bearer"):
            return None
        return self.tokens.get(token)

    def _unauthorized(self) -> JSONResponse:
        return JSONResponse({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}, 401)

    async def access_token(self, request: Request) -> Response:
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            return self._unauthorized()
        try:
            claims = jwt.decode(header[7:], self.public_key, algorithms=["RS256"], options={"require": ["iat", "exp", "iss"]})
        except jwt.PyJWTError:
            return JSONResponse({"message": "A JSON web token could not be decoded"}, 401)
        if str(claims["iss"]) != self.app_id or claims["exp"] - claims["iat"] > 660:
            return self._unauthorized()
        token = "ghs_" + secrets.token_urlsafe(27)
        self.tokens[token] = request.path_params["installation_id"]
        expires = datetime.now(timezone.utc) + timedelta(hours=1)
        return JSONResponse(
            {"token": token, "expires_at": expires.strftime("%Y-%m-%dT%H:%M:%SZ"), "permissions": {}}, 201
        )

    def _repo(self, request: Request) -> FakeRepo | None:
        return self.repos.get(f"{request.path_params['owner']}/{request.path_params['repo']}")

    def _authorized_repo(self, request: Request) -> FakeRepo | Response:
        if self._installation(request) is None:
            return self._unauthorized()
        repo = self._repo(request)
        return repo if repo is not None else _not_found()

    # reading

    async def repository(self, request: Request) -> Response:
        repo = self._authorized_repo(request)
        if isinstance(repo, Response):
            return repo
        return JSONResponse({
            "id": abs(hash(repo.owner + repo.name)) % 10**8, "name": repo.name,
            "full_name": f"{repo.owner}/{repo.name}", "owner": {"login": repo.owner},
            "default_branch": repo.default_branch, "private": False,
        })

    async def contents(self, request: Request) -> Response:
        repo = self._authorized_repo(request)
        if isinstance(repo, Response):
            return repo
        ref = request.query_params.get("ref", repo.default_branch)
        sha = repo.refs.get(ref)
        path = request.path_params["path"]
        if sha is None or path not in repo.trees.get(sha, {}):
            return _not_found()
        text = repo.trees[sha][path]
        return JSONResponse({
            "type": "file", "encoding": "base64", "size": len(text.encode()), "name": path.rsplit("/", 1)[-1],
            "path": path, "sha": hashlib.sha1(text.encode()).hexdigest(),
            "content": base64.encodebytes(text.encode()).decode(),
        })

    async def commit(self, request: Request) -> Response:
        repo = self._authorized_repo(request)
        if isinstance(repo, Response):
            return repo
        ref = request.path_params["ref"]
        sha = repo.refs.get(ref)
        if sha is None:
            return JSONResponse({"message": f"No commit found for SHA: {ref}"}, 422)
        return JSONResponse({"sha": sha, "commit": {"message": "a commit"}})

    async def pull(self, request: Request) -> Response:
        repo = self._authorized_repo(request)
        if isinstance(repo, Response):
            return repo
        pull = repo.pulls.get(request.path_params["number"])
        return JSONResponse(pull) if pull is not None else _not_found()

    async def collaborator(self, request: Request) -> Response:
        repo = self._authorized_repo(request)
        if isinstance(repo, Response):
            return repo
        if request.path_params["login"] in repo.collaborators:
            return Response(status_code=204)
        return _not_found()

    # writing

    async def status(self, request: Request) -> Response:
        repo = self._authorized_repo(request)
        if isinstance(repo, Response):
            return repo
        body = request.state.call.body or {}
        if body.get("state") not in ("error", "failure", "pending", "success"):
            return JSONResponse({"message": "Validation Failed", "errors": [{"field": "state"}]}, 422)
        return JSONResponse({"id": next(self._ids), **body}, 201)

    async def create_check_run(self, request: Request) -> Response:
        repo = self._authorized_repo(request)
        if isinstance(repo, Response):
            return repo
        body = request.state.call.body or {}
        if not body.get("name") or not body.get("head_sha"):
            return JSONResponse({"message": "Validation Failed"}, 422)
        check_run_id = next(self._ids)
        body["_id"] = check_run_id
        return JSONResponse({"id": check_run_id, "check_suite": {"id": 77}, **body}, 201)

    async def update_check_run(self, request: Request) -> Response:
        repo = self._authorized_repo(request)
        if isinstance(repo, Response):
            return repo
        return JSONResponse({"id": request.path_params["check_run_id"], **(request.state.call.body or {})})

    async def commit_comment(self, request: Request) -> Response:
        repo = self._authorized_repo(request)
        if isinstance(repo, Response):
            return repo
        return JSONResponse({"id": next(self._ids), "body": (request.state.call.body or {}).get("body")}, 201)

    async def issue_comment(self, request: Request) -> Response:
        repo = self._authorized_repo(request)
        if isinstance(repo, Response):
            return repo
        return JSONResponse({"id": next(self._ids), "body": (request.state.call.body or {}).get("body")}, 201)

    async def reaction(self, request: Request) -> Response:
        repo = self._authorized_repo(request)
        if isinstance(repo, Response):
            return repo
        return JSONResponse({"id": next(self._ids), "content": (request.state.call.body or {}).get("content")}, 201)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
