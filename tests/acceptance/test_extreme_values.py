"""Values at the edges of what the schemas accept: answered, never a 500, and never wedging a consumer.

Every date the ``date-time`` format lets in — a lowercase ``z``, an offset
that carries the moment past the year 9999 or before the year 1 — is read
and written back clamped to the dates Cairn can hold; numbers stored in
bounded columns are bounded in their schemas.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import taskcluster
from taskcluster.exceptions import TaskclusterRestFailure

from tests.acceptance.queue_helpers import task_definition
from tests.acceptance.storage_helpers import in_one_day, running_task
from tests.acceptance.test_index import complete_task, unique_namespace, wait_for_indexer

LOWERCASE_Z = taskcluster.stringDate(taskcluster.fromNow("2 days")).replace("Z", "z")
PAST_THE_LAST_DAY = "9999-12-31T23:00:00-05:00"
BEFORE_THE_FIRST_DAY = "0001-01-01T00:00:00+01:00"
EXTREME_DATES = [LOWERCASE_Z, PAST_THE_LAST_DAY, BEFORE_THE_FIRST_DAY]
DATE_NAMES = ["lowercase-z", "past-the-last-day", "before-the-first-day"]


def status_of(call: Callable[[], Any]) -> int:
    try:
        call()
    except TaskclusterRestFailure as e:
        assert e.status_code < 500, e.body
        return e.status_code
    return 200


@pytest.mark.parametrize("date", EXTREME_DATES, ids=DATE_NAMES)
def test_create_task_takes_every_schema_valid_expiry(server, date):
    queue = server.client("queue")
    task_id = taskcluster.slugId()
    status = status_of(lambda: queue.createTask(task_id, task_definition(expires=date)))
    if date != BEFORE_THE_FIRST_DAY:  # that one is before the deadline: refused as Taskcluster does
        assert status == 200
        assert queue.task(task_id)["expires"].endswith("Z")
    lowercase = task_definition(deadline=taskcluster.stringDate(taskcluster.fromNow("1 hour")).replace("Z", "z"))
    assert status_of(lambda: queue.createTask(taskcluster.slugId(), lowercase)) == 200


@pytest.mark.parametrize("date", EXTREME_DATES, ids=DATE_NAMES)
def test_create_artifact_takes_every_schema_valid_expiry(server, date):
    task_id, worker = running_task(server, expires=PAST_THE_LAST_DAY)
    reference = {"storageType": "reference", "expires": date, "contentType": "text/plain", "url": "https://example.com/a"}
    status = status_of(lambda: worker.createArtifact(task_id, 0, "public/a", reference))
    if date != BEFORE_THE_FIRST_DAY:
        assert status == 200
        assert server.client("queue").listArtifacts(task_id, 0)["artifacts"][0]["expires"].endswith("Z")


@pytest.mark.parametrize("date", EXTREME_DATES, ids=DATE_NAMES)
def test_create_upload_takes_every_schema_valid_expiry(server, date):
    objects = server.client("object")
    request = {"projectId": "cairn-tests", "uploadId": taskcluster.slugId(), "expires": date, "proposedUploadMethods": {}}
    answers = []
    status = status_of(lambda: answers.append(objects.createUpload("extreme/" + taskcluster.slugId(), request)))
    if date != BEFORE_THE_FIRST_DAY:
        assert status == 200
    for answer in answers:  # the expiry as stored: UTC, milliseconds, Z
        assert answer["expires"].endswith("Z") and answer["expires"][10] == "T", answer


@pytest.mark.parametrize("date", EXTREME_DATES, ids=DATE_NAMES)
def test_create_client_takes_every_schema_valid_expiry(server, date):
    auth = server.client("auth")
    client_id = "extreme/" + taskcluster.slugId()
    status = status_of(lambda: auth.createClient(client_id, {"expires": date, "scopes": [], "description": "edge"}))
    assert status == 200  # Taskcluster takes a client that has already expired
    assert auth.client(client_id)["expires"].endswith("Z")


@pytest.mark.parametrize("date", EXTREME_DATES, ids=DATE_NAMES)
def test_insert_task_takes_every_schema_valid_expiry(server, date):
    index = server.client("index")
    namespace = unique_namespace() + ".at"
    body = {"taskId": taskcluster.slugId(), "rank": 0, "data": {}, "expires": date}
    assert status_of(lambda: index.insertTask(namespace, body)) == 200
    parent = namespace.rsplit(".", 1)[0]
    assert status_of(lambda: index.listNamespaces(parent.split(".")[0])) == 200
    if date != BEFORE_THE_FIRST_DAY:  # an entry already expired is not found
        assert index.findTask(namespace)["expires"].endswith("Z")
        assert len(index.listTasks(parent)["tasks"]) == 1


@pytest.mark.parametrize("date", EXTREME_DATES, ids=DATE_NAMES)
def test_quarantine_and_declare_worker_take_every_schema_valid_date(server, date):
    queue = server.client("queue")
    declared = lambda: queue.declareWorker("cairn-extreme", "pool", "grp", "w1", {"expires": date})  # noqa: E731
    assert status_of(declared) == 200
    quarantined = lambda: queue.quarantineWorker(  # noqa: E731
        "cairn-extreme", "pool", "grp", "w1", {"quarantineUntil": date, "quarantineInfo": "edge"}
    )
    # A worker declared to have expired already is gone: 404, as in Taskcluster.
    assert status_of(quarantined) in ((200, 404) if date == BEFORE_THE_FIRST_DAY else (200,))
    assert status_of(lambda: queue.getWorker("cairn-extreme", "pool", "grp", "w1")) in (200, 404)
    assert status_of(lambda: queue.listWorkers("cairn-extreme", "pool")) == 200


def test_a_task_indexed_until_the_last_day_leaves_the_indexer_working(server):
    index = server.client("index")
    last, next_one = unique_namespace(), unique_namespace()
    forever = complete_task(
        server, routes=[f"index.{last}.x"], extra={"index": {"expires": "9999-12-31T23:59:59Z"}}
    )
    after = complete_task(server, routes=[f"index.{next_one}.x"])
    wait_for_indexer(server)
    assert index.findTask(f"{last}.x")["taskId"] == forever
    assert index.findTask(f"{last}.x")["expires"] == "9999-12-31T23:59:59.000Z"
    assert index.findTask(f"{next_one}.x")["taskId"] == after
    assert [n["name"] for n in index.listNamespaces(last)["namespaces"]] == []
    assert index.listNamespaces(last.split(".")[0]) is not None


@pytest.mark.parametrize("rank", [1e308, 2**70, -(2**70), 2**31])
def test_a_rank_beyond_what_is_stored_is_refused_and_the_index_still_answers(server, rank):
    index = server.client("index")
    namespace = unique_namespace()
    with pytest.raises(TaskclusterRestFailure) as refused:
        index.insertTask(f"{namespace}.big", {"taskId": taskcluster.slugId(), "rank": rank, "data": {}, "expires": in_one_day()})
    assert refused.value.status_code == 400 and refused.value.body["code"] == "InputValidationError"
    kept = {"taskId": taskcluster.slugId(), "rank": 2**31 - 1, "data": {}, "expires": in_one_day()}
    assert index.insertTask(f"{namespace}.top", kept)["rank"] == 2**31 - 1
    assert index.findTask(f"{namespace}.top")["rank"] == 2**31 - 1
    assert [t["rank"] for t in index.listTasks(namespace)["tasks"]] == [2**31 - 1]


def test_a_task_route_with_a_rank_beyond_what_is_stored_is_passed_over(server):
    index = server.client("index")
    huge, plain = unique_namespace(), unique_namespace()
    complete_task(server, routes=[f"index.{huge}.x"], extra={"index": {"rank": 2**70}})
    after = complete_task(server, routes=[f"index.{plain}.x"])
    wait_for_indexer(server)
    with pytest.raises(TaskclusterRestFailure) as missing:
        index.findTask(f"{huge}.x")
    assert missing.value.status_code == 404
    assert index.findTask(f"{plain}.x")["taskId"] == after
    assert index.listTasks(huge)["tasks"] == []
