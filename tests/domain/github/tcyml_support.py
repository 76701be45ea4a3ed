"""Shared pieces of the `.taskcluster.yml` engine's tests: real payloads, a fixed time, files by reference."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timezone
from functools import cache
from typing import Any

from cairn.domain.github import tcyml
from tests.conftest import reference_dir

NOW = datetime(2026, 3, 4, 5, 6, 7, 890000, tzinfo=timezone.utc)
NOW_ISO = "2026-03-04T05:06:07.890Z"
ROOT_URL = "https://tc.example.com"


@cache
def _payload(name: str) -> dict[str, Any]:
    path = reference_dir("github/webhooks") / "github" / "webhooks" / f"{name}.json"
    return json.loads(path.read_text())


def payload(name: str) -> dict[str, Any]:
    """A fresh copy of a real delivery, e.g. ``payload("push.none.4")``."""
    return copy.deepcopy(_payload(name))


def event(name: str) -> tcyml.GithubEvent:
    """The interpreted real delivery ``name`` (``<event>.<action>.<n>``)."""
    found = tcyml.interpret(name.split(".")[0], payload(name))
    assert found is not None
    return found


class Files:
    """A ``fetch_file`` over a dict ``{(owner, repo, path, ref): (text, revision)}`` that records its calls."""

    def __init__(self, files: dict[tuple[str, str, str, str], tuple[str, str]] | None = None):
        self.files = dict(files or {})
        self.calls: list[tuple[str, str, str, str]] = []

    def __call__(self, owner: str, repo: str, path: str, ref: str) -> tcyml.FetchedFile:
        self.calls.append((owner, repo, path, ref))
        try:
            text, revision = self.files[(owner, repo, path, ref)]
        except KeyError:
            raise LookupError(f"404 Not Found: {owner}/{repo}/{path}@{ref}") from None
        return tcyml.FetchedFile(text, revision)


def no_fetch(owner: str, repo: str, path: str, ref: str) -> tcyml.FetchedFile:
    raise AssertionError(f"fetch_file must not be called (asked for {owner}/{repo}/{path}@{ref})")


def render(text: str, ev: tcyml.GithubEvent, fetch_file: Any = no_fetch, **kwargs: Any) -> tcyml.Rendered:
    kwargs.setdefault("id_seed", "delivery-1")
    return tcyml.render(text, ev, root_url=ROOT_URL, now=NOW, fetch_file=fetch_file, **kwargs)


def release_event(action: str = "published", sha: str = "c" * 40) -> tcyml.GithubEvent:
    return event(f"release.{action}.0").with_sha(sha)


def comment_event(command: str = "/taskcluster rebuild please", state: str = "open") -> tcyml.GithubEvent:
    """The real issue_comment delivery made a comment on an open pull request, completed with that PR."""
    body = payload("issue_comment.created.0")
    body["issue"]["pull_request"] = {"url": body["issue"]["url"].replace("/issues/", "/pulls/")}
    body["issue"]["state"] = state
    body["comment"]["body"] = f"Looks good.\n{command}\nthanks"
    found = tcyml.interpret("issue_comment", body)
    assert found is not None
    return found


def pull_request_for_comment() -> dict[str, Any]:
    """GitHub's pull request object (as ``GET /pulls/N`` returns it) for the comment's issue."""
    return payload("pull_request.opened.0")["pull_request"]
