"""What the CI-from-GitHub tests share: a fake GitHub, signed deliveries of real payloads, the repository role.

A test module does ``from tests.acceptance.github_helpers import *`` for the
fixtures: ``github`` (a :class:`FakeGithub` on loopback, the App installed
as installation 1), ``settings_overrides`` (Cairn configured as that App, with a
webhook secret), and ``start_worker`` (the reference worker in a subprocess).
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import uuid
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.acceptance import waiting
from tests.acceptance.github_fake import APP_ID, PRIVATE_KEY, FakeGithub, FakeRepo
from tests.acceptance.worker_process import StartedWorkers
from tests.conftest import LiveServer, reference_dir

WEBHOOK_SECRET = "webhook-secret-for-tests"
OWNER, REPO = "Codertocat", "Hello-World"
WORKER_QUEUE = "cairn-test/github"
INSTALLATION = 1


def payload(name: str, **changes: Any) -> dict[str, Any]:
    """A real webhook example (``push.none.4``), with its installation set and top-level keys replaced."""
    path = reference_dir("github/webhooks") / "github" / "webhooks" / f"{name}.json"
    body = json.loads(path.read_text())
    body["installation"] = {"id": INSTALLATION, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uMQ=="}
    body.update(copy.deepcopy(changes))
    return body


def deliver(server: LiveServer, event: str, body: dict[str, Any], delivery_id: str | None = None,
            secret: str = WEBHOOK_SECRET) -> tuple[httpx.Response, str]:
    """POST a delivery as GitHub does: the raw JSON body signed with HMAC-SHA256."""
    delivery_id = delivery_id or str(uuid.uuid4())
    raw = json.dumps(body).encode()
    signature = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    response = httpx.post(
        f"{server.root_url}/api/github/v1/github", content=raw, timeout=10, headers={
            "Content-Type": "application/json", "X-GitHub-Event": event, "X-GitHub-Delivery": delivery_id,
            "X-Hub-Signature-256": signature, "User-Agent": "GitHub-Hookshot/abc123",
        },
    )
    return response, delivery_id


def grant_repo_role(server: LiveServer, owner: str = OWNER, repo: str = REPO, queue: str = WORKER_QUEUE) -> None:
    """The role every task of the repository is created with: create tasks on the test queue, rerun them."""
    server.client("auth").createRole(f"repo:github.com/{owner}/{repo}:*", {
        "description": "tasks from GitHub",
        "scopes": [f"queue:create-task:highest:{queue}", "queue:create-task:project:none",
                   "queue:rerun-task:taskcluster-github/*"],
    })


def taskcluster_yml(command: str = "echo hello from github", name: str = "build", extra: str = "") -> str:
    """A version 1 file with one task on the test queue, running ``command``."""
    return f"""\
version: 1
policy:
  pullRequests: collaborators
{extra}tasks:
  - taskId: {{$eval: as_slugid("{name}")}}
    taskQueueId: {WORKER_QUEUE}
    created: {{$fromNow: ''}}
    deadline: {{$fromNow: '1 hour'}}
    payload:
      command: [[sh, -c, "{command}"]]
      maxRunTime: 60
    metadata:
      name: {name}
      description: {name} for ${{tasks_for}}
      owner: ci@example.com
      source: ${{event.repository.html_url}}
"""


#: A delivery goes through the receiver, a consumer and the fake GitHub: a longer default wait.
wait_for = partial(waiting.wait_for, timeout=60, interval=0.1)


def handled(server: LiveServer, delivery_id: str, timeout: float = 60) -> Any:
    """The delivery once a consumer has recorded what it did with it."""
    service = server.runtime.github_flow.service

    def check() -> Any:
        delivery = service.delivery(delivery_id)
        return delivery if delivery is not None and delivery.handled else None

    return wait_for(check, timeout=timeout, what=f"delivery {delivery_id} to be handled")


def group_tasks(server: LiveServer, task_group_id: str) -> list[dict[str, Any]]:
    return server.client("queue").listTaskGroup(task_group_id)["tasks"]


@pytest.fixture
def github() -> Iterator[FakeGithub]:
    fake = FakeGithub().start()
    yield fake
    fake.stop()


@pytest.fixture
def repo(github: FakeGithub) -> FakeRepo:
    repo = github.repo(OWNER, REPO, default_branch="master")
    repo.collaborators.update({"Codertocat"})
    return repo


@pytest.fixture
def settings_overrides(github: FakeGithub) -> dict[str, Any]:
    return {
        "github_webhook_secret": WEBHOOK_SECRET, "github_app_id": APP_ID, "github_private_key": PRIVATE_KEY,
        "github_api_url": github.url, "claim_timeout": 10, "reaper_interval": 0.5,
    }


@pytest.fixture
def server(runtime: Any) -> Iterator[LiveServer]:
    live = LiveServer(runtime)
    live.server.config.timeout_graceful_shutdown = 0.1
    live.start()
    grant_repo_role(live)
    yield live
    live.stop()


@pytest.fixture
def start_worker(server: LiveServer, tmp_path: Path) -> Iterator[Any]:
    workers = StartedWorkers(server, tmp_path, WORKER_QUEUE, capacity=2)
    yield workers.start
    workers.terminate()
