"""GitHub's REST API, as a GitHub App: an app JWT, installation tokens, and the calls Cairn makes.

The app signs a short JWT (RS256, PyJWT) with its private key and trades it
for an installation access token per installation (``POST
/app/installations/{id}/access_tokens``); tokens are kept until ten minutes
before they expire. Every request is retried with backoff (tenacity) when
GitHub cannot answer now — a connection error, a 5xx, a 429, or a 403 whose
rate-limit headers say the quota is spent — honouring ``Retry-After`` and
``X-RateLimit-Reset`` up to a ceiling. After the last attempt the call raises
:class:`GithubUnavailable`, which the consumers turn into the follower's
``Unavailable``: the event is handled again later, never dropped. Any other
refusal is a :class:`GithubError` with GitHub's status and message.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx
import jwt
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

USER_AGENT = "cairn-github"
ACCEPT = "application/vnd.github+json"
API_VERSION = "2022-11-28"
TOKEN_MARGIN = 600.0  # seconds before expiry at which a token is renewed
JWT_LIFETIME = 540  # GitHub accepts at most ten minutes


class GithubError(Exception):
    """GitHub refused the request."""

    def __init__(self, status: int, message: str, method: str = "", path: str = ""):
        super().__init__(f"GitHub answered {status} to {method} {path}: {message}")
        self.status = status
        self.message = message


class GithubUnavailable(Exception):
    """GitHub could not answer now (down, overloaded or rate limited): try the whole thing again later."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    first: float = 0.5
    ceiling: float = 30.0


def load_private_key(text: str, path: str) -> str:
    """The PEM from the setting's text (``\\n`` escapes allowed) or else from the file."""
    if text:
        return text.replace("\\n", "\n")
    if path:
        with open(path) as f:
            return f.read()
    return ""


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds GitHub asks us to wait, if it says; None when this is not a rate limit."""
    headers = response.headers
    if "retry-after" in headers:
        try:
            return max(0.0, float(headers["retry-after"]))
        except ValueError:
            return 1.0
    if headers.get("x-ratelimit-remaining") == "0" and "x-ratelimit-reset" in headers:
        try:
            return max(0.0, float(headers["x-ratelimit-reset"]) - time.time())
        except ValueError:
            return 1.0
    return None


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500]
    if isinstance(body, dict):
        message = str(body.get("message", ""))
        errors = body.get("errors")
        return f"{message} {errors}" if errors else message
    return str(body)[:500]


class Transport:
    """Requests to one GitHub API, retried with backoff when GitHub cannot answer now."""

    def __init__(self, api_url: str, retry: RetryPolicy = RetryPolicy(), transport: httpx.BaseTransport | None = None,
                 timeout: float = 30.0):
        self.api_url = api_url.rstrip("/")
        self.retry = retry
        self.http = httpx.Client(
            base_url=self.api_url, timeout=timeout, transport=transport,
            headers={"User-Agent": USER_AGENT, "Accept": ACCEPT, "X-GitHub-Api-Version": API_VERSION},
        )

    def close(self) -> None:
        self.http.close()

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        backoff = wait_exponential_jitter(multiplier=self.retry.first, max=self.retry.ceiling)(state)
        if isinstance(error, GithubUnavailable) and error.retry_after is not None:
            return min(self.retry.ceiling, max(error.retry_after, backoff / 2))
        return backoff

    def request(self, method: str, path: str, auth: Callable[[], str], *, accept: str | None = None,
                json: Any = None, params: dict[str, Any] | None = None, ok_statuses: tuple[int, ...] = ()) -> httpx.Response:
        """One call, retried; returns the response for a 2xx (or a status in ``ok_statuses``)."""
        retrying = Retrying(
            retry=retry_if_exception_type(GithubUnavailable), stop=stop_after_attempt(self.retry.attempts),
            wait=self._wait, reraise=True,
        )
        return retrying(self._once, method, path, auth, accept, json, params, ok_statuses)

    def _once(self, method: str, path: str, auth: Callable[[], str], accept: str | None, json: Any,
              params: dict[str, Any] | None, ok_statuses: tuple[int, ...]) -> httpx.Response:
        headers = {"Authorization": auth()}
        if accept:
            headers["Accept"] = accept
        try:
            response = self.http.request(method, path, headers=headers, json=json, params=params)
        except httpx.TransportError as e:
            raise GithubUnavailable(f"{method} {path}: {e!r}") from e
        status = response.status_code
        if 200 <= status < 300 or status in ok_statuses:
            return response
        wait = _retry_after(response)
        if status >= 500 or status == 429 or (status == 403 and wait is not None):
            raise GithubUnavailable(f"GitHub answered {status} to {method} {path}: {_message(response)}", wait)
        raise GithubError(status, _message(response), method, path)


class GithubApp:
    """Cairn as a GitHub App: signs app JWTs and keeps one installation token per installation."""

    def __init__(self, app_id: str, private_key: str, api_url: str = "https://api.github.com",
                 retry: RetryPolicy = RetryPolicy(), transport: httpx.BaseTransport | None = None):
        if not app_id or not private_key:
            raise ValueError("a GitHub App needs its id and private key")
        self.app_id = app_id
        self.private_key = private_key
        self.transport = Transport(api_url, retry, transport)
        self._tokens: dict[int, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        self.transport.close()

    def app_jwt(self) -> str:
        now = int(time.time())
        # Backdated a minute against clock drift, as GitHub recommends.
        claims = {"iat": now - 60, "exp": now + JWT_LIFETIME, "iss": self.app_id}
        return jwt.encode(claims, self.private_key, algorithm="RS256")

    def installation_token(self, installation_id: int) -> str:
        with self._lock:
            cached = self._tokens.get(installation_id)
            if cached and cached[1] - TOKEN_MARGIN > time.time():
                return cached[0]
        response = self.transport.request(
            "POST", f"/app/installations/{installation_id}/access_tokens", lambda: f"Bearer {self.app_jwt()}"
        )
        body = response.json()
        expires = datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00")).timestamp()
        with self._lock:
            self._tokens[installation_id] = (body["token"], expires)
        return body["token"]

    def installation(self, installation_id: int) -> Installation:
        return Installation(self, installation_id)


def _repo(owner: str, repo: str) -> str:
    return f"/repos/{quote(owner, safe='')}/{quote(repo, safe='')}"


class Installation:
    """The REST calls Cairn makes on behalf of one installation of the app."""

    def __init__(self, app: GithubApp, installation_id: int):
        self.app = app
        self.installation_id = installation_id

    def _auth(self) -> str:
        return f"token {self.app.installation_token(self.installation_id)}"

    def _call(self, method: str, path: str, **options: Any) -> httpx.Response:
        return self.app.transport.request(method, path, self._auth, **options)

    def repository(self, owner: str, repo: str) -> dict[str, Any]:
        return self._call("GET", _repo(owner, repo)).json()

    def default_branch(self, owner: str, repo: str) -> str:
        return str(self.repository(owner, repo)["default_branch"])

    def file(self, owner: str, repo: str, path: str, ref: str) -> str | None:
        """The text of ``path`` at ``ref``; None when there is no such file."""
        response = self._call(
            "GET", f"{_repo(owner, repo)}/contents/{quote(path)}", params={"ref": ref}, ok_statuses=(404,)
        )
        if response.status_code == 404:
            return None
        body = response.json()
        if not isinstance(body, dict) or body.get("type") != "file":
            return None
        return base64.b64decode(body.get("content", "")).decode("utf-8")

    def commit_sha(self, owner: str, repo: str, ref: str) -> str | None:
        """The commit a branch, tag or sha names; None when it names none."""
        response = self._call(
            "GET", f"{_repo(owner, repo)}/commits/{quote(ref, safe='')}", ok_statuses=(404, 422)
        )
        if response.status_code in (404, 422):
            return None
        return str(response.json()["sha"])

    def pull_request(self, owner: str, repo: str, number: int) -> dict[str, Any]:
        return self._call("GET", f"{_repo(owner, repo)}/pulls/{int(number)}").json()

    def is_collaborator(self, owner: str, repo: str, login: str) -> bool:
        response = self._call(
            "GET", f"{_repo(owner, repo)}/collaborators/{quote(login, safe='')}", ok_statuses=(404,)
        )
        return response.status_code == 204

    def create_status(self, owner: str, repo: str, sha: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", f"{_repo(owner, repo)}/statuses/{sha}", json=body).json()

    def create_check_run(self, owner: str, repo: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", f"{_repo(owner, repo)}/check-runs", json=body).json()

    def update_check_run(self, owner: str, repo: str, check_run_id: int, body: dict[str, Any]) -> dict[str, Any]:
        return self._call("PATCH", f"{_repo(owner, repo)}/check-runs/{int(check_run_id)}", json=body).json()

    def create_commit_comment(self, owner: str, repo: str, sha: str, body: str) -> dict[str, Any]:
        return self._call("POST", f"{_repo(owner, repo)}/commits/{sha}/comments", json={"body": body}).json()

    def create_issue_comment(self, owner: str, repo: str, number: int, body: str) -> dict[str, Any]:
        return self._call("POST", f"{_repo(owner, repo)}/issues/{int(number)}/comments", json={"body": body}).json()

    def add_comment_reaction(self, owner: str, repo: str, comment_id: int, content: str) -> None:
        self._call(
            "POST", f"{_repo(owner, repo)}/issues/comments/{int(comment_id)}/reactions",
            json={"content": content}, ok_statuses=(404,),
        )
