"""Replayed task-lifecycle requests, with nonces recorded in the commands' own flights.

On PostgreSQL the lifecycle's commands (createTask, claimWork, reclaimTask,
report*) record their request's Hawk nonce in the same flight as their
writes (``projections/auth/hawk_nonces.py``). A copy of such a request must
still be refused whichever server process it reaches, and must change
nothing; so must the copy of a request that was refused.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import httpx
import psycopg
import pytest
import taskcluster

from cairn.domain.queue.task import task_key
from cairn.domain.timestamps import iso, utcnow
from tests.conftest import free_port
from tests.integration.cairn_process import start_server, stop_server
from tests.integration.signed_requests import Signed, refused_as_replay

QUEUE = "replays/worker"


def definition() -> dict[str, Any]:
    now = utcnow()
    return {
        "taskQueueId": QUEUE, "created": iso(now), "deadline": iso(now + timedelta(hours=1)), "payload": {},
        "metadata": {"name": "replayed", "description": "", "owner": "tests@example.com",
                     "source": "https://example.com"},
    }


def events_of(database_url: str, task_id: str) -> list[str]:
    with psycopg.connect(database_url) as db:
        rows = db.execute("SELECT topic FROM cairn_events WHERE originator_id = %s ORDER BY originator_version",
                          (str(task_key(task_id)),)).fetchall()
    return [topic.rsplit(".", 1)[-1].rsplit(":", 1)[-1] for (topic,) in rows]


@pytest.fixture
def two_servers(postgres_database, tmp_path):
    database_url = postgres_database.fresh(tmp_path)
    first, second = free_port(), free_port()
    name = f"http://127.0.0.1:{first}"
    servers = [start_server(database_url, tmp_path / f"s{n}", port, root_url=name, claim_timeout="600")
               for n, port in enumerate((first, second))]
    try:
        yield database_url, name, first, second
    finally:
        for server in servers:
            stop_server(server)


def test_copies_of_lifecycle_commands_are_refused_everywhere_and_change_nothing(two_servers):
    database_url, name, first, second = two_servers
    create = Signed(name, "PUT", f"/api/queue/v1/task/{taskcluster.slugId()}", definition())
    created = create.to(first)
    assert created.status_code == 200, created.text
    assert refused_as_replay(create.to(second))
    assert refused_as_replay(create.to(first))

    # A second task waits: a copied claimWork that took it would show.
    assert Signed(name, "PUT", f"/api/queue/v1/task/{taskcluster.slugId()}", definition()).to(second).status_code == 200
    claim = Signed(name, "POST", f"/api/queue/v1/claim-work/{QUEUE}",
                   {"workerGroup": "g", "workerId": "w", "tasks": 1})
    claimed = claim.to(second)
    assert claimed.status_code == 200
    [task] = claimed.json()["tasks"]
    assert refused_as_replay(claim.to(first))
    assert refused_as_replay(claim.to(second))
    pending = Signed(name, "GET", f"/api/queue/v1/pending/{QUEUE}").to(first).json()
    assert pending["pendingTasks"] == 1

    task_id = task["status"]["taskId"]
    reclaim = Signed(name, "POST", f"/api/queue/v1/task/{task_id}/runs/0/reclaim")
    assert reclaim.to(first).status_code == 200
    assert refused_as_replay(reclaim.to(second))
    report = Signed(name, "POST", f"/api/queue/v1/task/{task_id}/runs/0/completed")
    assert report.to(second).status_code == 200
    assert refused_as_replay(report.to(first))

    assert events_of(database_url, task_id) == ["Defined", "RunPending", "RunClaimed", "RunReclaimed",
                                                "RunResolved"]


def test_the_copy_of_a_refused_command_is_refused_as_a_copy(two_servers):
    _, name, first, second = two_servers
    # No such run: the command is refused, and its transaction rolled back with the nonce in it.
    report = Signed(name, "POST", f"/api/queue/v1/task/{taskcluster.slugId()}/runs/0/completed")
    refused = report.to(first)
    assert refused.status_code == 404, refused.text
    assert refused_as_replay(report.to(second))
    assert refused_as_replay(report.to(first))
    # Refused before any command (the body breaks the schema): the same.
    bad = Signed(name, "PUT", f"/api/queue/v1/task/{taskcluster.slugId()}", {"taskQueueId": QUEUE})
    assert bad.to(second).status_code == 400
    assert refused_as_replay(bad.to(first))


def test_a_request_and_its_copy_sent_at_once_to_two_processes_succeed_once(two_servers):
    database_url, name, first, second = two_servers
    for _ in range(10):
        task_id = taskcluster.slugId()
        create = Signed(name, "PUT", f"/api/queue/v1/task/{task_id}", definition())
        answers: list[httpx.Response] = []
        threads = [threading.Thread(target=lambda port=port: answers.append(create.to(port)))
                   for port in (first, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(a.status_code for a in answers) == [200, 401], [a.text for a in answers]
        assert refused_as_replay(next(a for a in answers if a.status_code == 401))
        assert events_of(database_url, task_id) == ["Defined", "RunPending"]
