"""Fixtures and helpers for the artifact and object tests.

The signed data URLs are built on the deployment's public root URL, so the
server here is told the root URL it really has (the live server's port is
only known once it is made).
"""

from __future__ import annotations

from typing import Any

import taskcluster

from tests.acceptance.queue_helpers import claim_one, task_definition
from tests.conftest import ROOT_TOKEN, LiveServer


def in_one_day() -> str:
    return taskcluster.stringDate(taskcluster.fromNow("1 day"))


def running_task(server: LiveServer, **definition: Any) -> tuple[str, Any]:
    """A new task, claimed: its id and a queue client with the run's credentials."""
    queue = server.client("queue")
    task_id = taskcluster.slugId()
    queue.createTask(task_id, task_definition(**definition))
    claim = claim_one(queue, definition.get("taskQueueId", "cairn-test/worker"))
    assert claim["status"]["taskId"] == task_id
    worker = taskcluster.Queue({"rootUrl": server.root_url, "credentials": claim["credentials"], "maxRetries": 0})
    return task_id, worker


def client_with_scopes(server: LiveServer, service: str, *scopes: str) -> Any:
    """A client of ``service`` with temporary credentials holding just ``scopes``."""
    credentials = taskcluster.createTemporaryCredentials(
        "static/root", ROOT_TOKEN, taskcluster.fromNow("-5 minutes"), taskcluster.fromNow("1 hour"), list(scopes)
    )
    cls = getattr(taskcluster, service[0].upper() + service[1:])
    return cls({"rootUrl": server.root_url, "credentials": credentials, "maxRetries": 0})


def blob_path(server: LiveServer, object_name: str) -> str:
    """Where the blob store keeps an object's data on disk."""
    found = server.runtime.storage_reads.object(object_name)
    return server.runtime.blob_store.path(found["blobKey"])


def corrupt(path: str) -> None:
    """Flip the first byte of a file, in place, keeping its length."""
    with open(path, "r+b") as f:
        first = f.read(1)
        f.seek(0)
        f.write(bytes([first[0] ^ 0xFF]))
