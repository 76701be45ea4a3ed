"""The index through the official client: tasks found by name.

A completed task is indexed by the task indexer, which follows the log; the
tests wait for it by watching its tracked position pass the end of the log.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import taskcluster
from taskcluster.exceptions import TaskclusterRestFailure

from cairn.domain.timestamps import iso, parse_time, utcnow
from cairn.projections.history import read_history
from cairn.projections.index.views import rebuild_index
from tests.acceptance.storage_helpers import (
    client_with_scopes,
    in_one_day,
    running_task,
)

WAIT_SECONDS = 15.0


def failure(code: int, call, *args, **kwargs) -> dict:
    with pytest.raises(TaskclusterRestFailure) as raised:
        call(*args, **kwargs)
    assert raised.value.status_code == code, raised.value.body
    return raised.value.body


def wait_for_indexer(server) -> None:
    """Poll until the task indexer has handled everything now in the log."""
    runtime = server.runtime
    end = runtime.log.recorder.max_notification_id() or 0
    deadline = time.monotonic() + WAIT_SECONDS
    while runtime.task_indexer.position() < end:
        assert time.monotonic() < deadline, "the task indexer did not catch up"
        time.sleep(0.02)


def unique_namespace() -> str:
    return "proj-" + taskcluster.slugId().replace("_", "-").lower()


def complete_task(server, **definition: Any) -> str:
    task_id, worker = running_task(server, **definition)
    worker.reportCompleted(task_id, 0)
    return task_id


def entry(task_id: str, rank: float = 0, data: dict | None = None, expires: str | None = None) -> dict:
    return {"taskId": task_id, "rank": rank, "data": data or {}, "expires": expires or in_one_day()}


# indexing completed tasks


def test_completed_task_is_indexed_under_its_index_routes(server):
    ns = unique_namespace()
    routes = [f"index.{ns}.latest", f"index.{ns}.revisions.abc123", "notify.email.x@example.com", "index.bad..path"]
    task_id = complete_task(server, routes=routes)
    wait_for_indexer(server)

    index = server.client("index")
    task = server.client("queue").task(task_id)
    found = index.findTask(f"{ns}.latest")
    assert found == {"namespace": f"{ns}.latest", "taskId": task_id, "rank": 0, "data": {}, "expires": task["expires"]}
    assert index.findTask(f"{ns}.revisions.abc123")["taskId"] == task_id

    history = read_history(server.runtime.log, f"index/{ns}.latest")
    assert [(h.type, h.actor) for h in history] == [
        ("IndexedTaskCreated", "cairn/index"),
        ("IndexedTaskInserted", "cairn/index"),
    ]
    assert history[1].data["source_position"] > 0


def test_failed_task_is_not_indexed(server):
    ns = unique_namespace()
    task_id, worker = running_task(server, routes=[f"index.{ns}.latest"])
    worker.reportFailed(task_id, 0)
    wait_for_indexer(server)
    assert failure(404, server.client("index").findTask, f"{ns}.latest")["code"] == "ResourceNotFound"


def test_extra_index_sets_rank_data_and_expiry_and_a_lower_rank_does_not_replace(server):
    ns = unique_namespace()
    expires = taskcluster.stringDate(taskcluster.fromNow("2 days"))
    first = complete_task(
        server,
        routes=[f"index.{ns}.latest"],
        extra={"index": {"rank": 10, "data": {"revision": "abc"}, "expires": expires}},
    )
    wait_for_indexer(server)
    index = server.client("index")
    found = index.findTask(f"{ns}.latest")
    assert (found["taskId"], found["rank"], found["data"]) == (first, 10, {"revision": "abc"})
    assert found["expires"] == iso(parse_time(expires))

    complete_task(server, routes=[f"index.{ns}.latest"], extra={"index": {"rank": 5}})
    wait_for_indexer(server)
    assert index.findTask(f"{ns}.latest")["taskId"] == first

    same_rank = complete_task(server, routes=[f"index.{ns}.latest"], extra={"index": {"rank": 10}})
    wait_for_indexer(server)
    assert index.findTask(f"{ns}.latest")["taskId"] == same_rank


def test_replaying_the_log_into_the_indexer_changes_nothing(server):
    ns = unique_namespace()
    first = complete_task(server, routes=[f"index.{ns}.a", f"index.{ns}.b"])
    wait_for_indexer(server)
    index = server.client("index")
    later = taskcluster.slugId()
    index.insertTask(f"{ns}.b", entry(later, rank=0))
    wait_for_indexer(server)

    runtime = server.runtime
    end = runtime.log.recorder.max_notification_id()
    with runtime.store.unit_of_work() as session:  # as after a crash that lost the position
        session.run("set_consumer_position", {"name": "task-indexer", "position": 0})
    wait_for_indexer(server)
    assert runtime.log.recorder.max_notification_id() == end, "a replay recorded new events"
    assert index.findTask(f"{ns}.a")["taskId"] == first
    assert index.findTask(f"{ns}.b")["taskId"] == later


# inserting and deleting


def test_insert_task_keeps_the_highest_rank_and_the_newest_on_a_tie(server):
    ns = unique_namespace()
    path = f"{ns}.release"
    index = server.client("index")
    a, b, c, d = (taskcluster.slugId() for _ in range(4))

    inserted = index.insertTask(path, entry(a, rank=5, data={"n": 1}))
    assert inserted["namespace"] == path and inserted["taskId"] == a and inserted["rank"] == 5

    kept = index.insertTask(path, entry(b, rank=1))
    assert kept["taskId"] == a, "a lower rank answers 200 with the entry that stays"
    assert index.findTask(path)["taskId"] == a

    assert index.insertTask(path, entry(c, rank=5))["taskId"] == c
    assert index.insertTask(path, entry(d, rank=7.5))["rank"] == 7.5
    assert index.findTask(path)["taskId"] == d

    again = index.insertTask(path, entry(d, rank=7.5, expires=index.findTask(path)["expires"]))
    assert again == index.findTask(path)
    types = [h.type for h in read_history(server.runtime.log, f"index/{path}")]
    assert types == ["IndexedTaskCreated", "IndexedTaskInserted", "IndexedTaskInserted", "IndexedTaskInserted"]


def test_insert_task_needs_its_scope_and_a_valid_path(server):
    ns = unique_namespace()
    limited = client_with_scopes(server, "index", f"index:insert-task:{ns}.*")
    assert limited.insertTask(f"{ns}.mine", entry(taskcluster.slugId()))["namespace"] == f"{ns}.mine"
    body = failure(403, limited.insertTask, f"other-{ns}.x", entry(taskcluster.slugId()))
    assert body["code"] == "InsufficientScopes"

    index = server.client("index")
    assert failure(400, index.insertTask, f"{ns}..bad", entry(taskcluster.slugId()))["code"] == "InvalidRequestArguments"
    body = failure(400, index.insertTask, f"{ns}.big", entry(taskcluster.slugId(), data={"x": "y" * 40_000}))
    assert body["code"] == "InputError"
    assert failure(400, index.insertTask, "a" * 256, entry(taskcluster.slugId()))["code"] == "InputError"
    bad = {"taskId": "not-a-slug", "rank": 0, "data": {}, "expires": in_one_day()}
    assert failure(400, index.insertTask, f"{ns}.x", bad)["code"] == "InputValidationError"


def test_delete_task_removes_the_entry_but_not_its_namespace(server):
    ns = unique_namespace()
    index = server.client("index")
    index.insertTask(f"{ns}.sub.entry", entry(taskcluster.slugId(), rank=100))
    assert index.deleteTask(f"{ns}.sub.entry") == {}
    assert failure(404, index.findTask, f"{ns}.sub.entry")["code"] == "ResourceNotFound"
    assert index.deleteTask(f"{ns}.sub.entry") == {}, "deleting is idempotent"
    assert index.deleteTask(f"{ns}.never.there") == {}
    assert [n["namespace"] for n in index.listNamespaces(ns)["namespaces"]] == [f"{ns}.sub"]

    # The rank of the deleted entry no longer counts.
    low = taskcluster.slugId()
    index.insertTask(f"{ns}.sub.entry", entry(low, rank=0))
    assert index.findTask(f"{ns}.sub.entry")["taskId"] == low
    history = read_history(server.runtime.log, f"index/{ns}.sub.entry")
    assert [h.type for h in history][-2:] == ["IndexedTaskDeleted", "IndexedTaskInserted"]
    assert failure(403, server.anonymous("index").deleteTask, f"{ns}.sub.entry")["code"] == "InsufficientScopes"


# reading


def test_unknown_paths_are_404_resource_not_found(server):
    index = server.client("index")
    ns = unique_namespace()
    body = failure(404, index.findTask, f"{ns}.nothing.here")
    assert body["code"] == "ResourceNotFound"
    assert set(body) == {"code", "message", "requestInfo"}
    assert index.listTasks(f"{ns}.nothing") == {"tasks": []}
    assert index.listNamespaces(f"{ns}.nothing") == {"namespaces": []}
    assert failure(404, index.findArtifactFromTask, f"{ns}.nothing", "public/x")["code"] == "ResourceNotFound"
    assert failure(400, index.findTask, "a..b")["code"] == "InvalidRequestArguments"


def test_list_tasks_and_namespaces_in_pages(server):
    ns = unique_namespace()
    index = server.client("index")
    ids = {}
    for i in range(5):
        ids[f"{ns}.t{i}"] = taskcluster.slugId()
        index.insertTask(f"{ns}.t{i}", entry(ids[f"{ns}.t{i}"], rank=i))
    for name in ("alpha", "beta", "gamma"):
        index.insertTask(f"{ns}.{name}.deeper.x", entry(taskcluster.slugId()))

    tasks, token, pages = [], None, 0
    while True:
        query = {"limit": 2, **({"continuationToken": token} if token else {})}
        result = index.listTasks(ns, query=query)
        tasks += result["tasks"]
        pages += 1
        token = result.get("continuationToken")
        if not token:
            break
    assert pages == 3
    assert {t["namespace"]: t["taskId"] for t in tasks} == ids
    assert all(t["rank"] == int(t["namespace"][-1]) for t in tasks)

    first = index.listNamespaces(ns, query={"limit": 2})
    assert len(first["namespaces"]) == 2 and first["continuationToken"]
    rest = index.listNamespaces(ns, query={"limit": 2, "continuationToken": first["continuationToken"]})
    assert "continuationToken" not in rest
    listed = first["namespaces"] + rest["namespaces"]
    assert sorted(n["namespace"] for n in listed) == [f"{ns}.alpha", f"{ns}.beta", f"{ns}.gamma"]
    assert all(n["name"] == n["namespace"].rsplit(".", 1)[1] for n in listed)
    assert index.listNamespaces(f"{ns}.alpha")["namespaces"][0]["namespace"] == f"{ns}.alpha.deeper"

    root = index.listNamespaces("")
    assert ns in [n["namespace"] for n in root["namespaces"]]
    assert failure(400, index.listTasks, ns, query={"limit": "0"})["code"] == "InvalidRequestArguments"
    assert failure(400, index.listTasks, ns, query={"continuationToken": "_w"})["code"] == "InvalidRequestArguments"


def test_find_tasks_at_index(server):
    ns = unique_namespace()
    index = server.client("index")
    a, b = taskcluster.slugId(), taskcluster.slugId()
    index.insertTask(f"{ns}.a", entry(a))
    index.insertTask(f"{ns}.b", entry(b))
    paths = [f"{ns}.b", f"{ns}.missing", f"{ns}.a", f"{ns}.b"]

    result = index.findTasksAtIndex({"indexes": paths})
    assert [t["taskId"] for t in result["tasks"]] == [b, a]
    assert "continuationToken" not in result

    first = index.findTasksAtIndex(payload={"indexes": paths}, query={"limit": 1})
    token = first["continuationToken"]
    second = index.findTasksAtIndex(payload={"indexes": paths}, query={"limit": 1, "continuationToken": token})
    assert [t["taskId"] for t in first["tasks"] + second["tasks"]] == [b, a]
    assert "continuationToken" not in second
    assert index.findTasksAtIndex({}) == {"tasks": []}

    limited = client_with_scopes(server, "index", f"index:find-task:{ns}.a")
    assert limited.findTasksAtIndex({"indexes": [f"{ns}.a"]})["tasks"][0]["taskId"] == a
    assert failure(403, limited.findTasksAtIndex, {"indexes": paths})["code"] == "InsufficientScopes"


def test_expired_entries_are_not_found_and_are_reaped_with_an_event(server):
    ns = unique_namespace()
    index = server.client("index")
    past = taskcluster.stringDate(taskcluster.fromNow("-1 minute"))
    index.insertTask(f"{ns}.old", entry(taskcluster.slugId(), expires=past))
    index.insertTask(f"{ns}.live", entry(taskcluster.slugId()))
    assert failure(404, index.findTask, f"{ns}.old")["code"] == "ResourceNotFound"
    assert [t["namespace"] for t in index.listTasks(ns)["tasks"]] == [f"{ns}.live"]
    assert index.findTasksAtIndex({"indexes": [f"{ns}.old"]}) == {"tasks": []}

    # An expired entry counts as absent: any rank replaces it.
    newer = taskcluster.slugId()
    index.insertTask(f"{ns}.old2", entry(taskcluster.slugId(), rank=99, expires=past))
    assert index.insertTask(f"{ns}.old2", entry(newer, rank=0))["taskId"] == newer

    index.insertTask(f"{ns}.old3", entry(taskcluster.slugId(), expires=past))
    server.runtime.reaper.reap_once()
    history = read_history(server.runtime.log, f"index/{ns}.old3")
    assert (history[-1].type, history[-1].actor) == ("IndexedTaskExpired", "cairn/reaper")
    rows = [r["namespace"] for r in server.runtime.index_reads.snapshot()["index_entries"]]
    assert f"{ns}.old3" not in rows and f"{ns}.live" in rows


# artifacts


# A public deployment: the anonymous role grants public/ artifacts.
@pytest.mark.parametrize("settings_overrides", [{"anonymous_role": "public"}])
def test_find_artifact_from_task_redirects_to_the_queue(server):
    ns = unique_namespace()
    task_id, worker = running_task(server, routes=[f"index.{ns}.build"])
    for name in ("public/log.txt", "private/secret.txt"):
        url = f"https://example.com/{name}"
        worker.createArtifact(task_id, 0, name, {"storageType": "reference", "expires": in_one_day(), "contentType": "text/plain", "url": url})
    worker.reportCompleted(task_id, 0)
    wait_for_indexer(server)

    # Public: no credentials needed, a plain queue URL.
    base = f"{server.root_url}/api/index/v1/task/{ns}.build/artifacts/"
    response = httpx.get(base + quote("public/log.txt", safe=""), follow_redirects=False)
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location == f"{server.root_url}/api/queue/v1/task/{task_id}/artifacts/{quote('public/log.txt', safe='')}"
    at_queue = httpx.get(location, follow_redirects=False)
    assert at_queue.status_code == 303
    assert at_queue.headers["location"] == "https://example.com/public/log.txt"

    # Private: the scope is needed, and the redirect is signed for whoever follows it.
    anonymous = httpx.get(base + quote("private/secret.txt", safe=""), follow_redirects=False)
    assert anonymous.status_code == 403
    assert anonymous.json()["code"] == "InsufficientScopes"
    other = client_with_scopes(server, "index", "queue:get-artifact:private/other")
    assert httpx.get(other.buildSignedUrl("findArtifactFromTask", f"{ns}.build", "private/secret.txt")).status_code == 403

    holder = client_with_scopes(server, "index", "queue:get-artifact:private/secret.txt")
    signed = holder.buildSignedUrl("findArtifactFromTask", f"{ns}.build", "private/secret.txt")
    response = httpx.get(signed, follow_redirects=False)
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.startswith(f"{server.root_url}/api/queue/v1/task/{task_id}/artifacts/private%2Fsecret.txt?bewit=")
    at_queue = httpx.get(location, follow_redirects=False)
    assert at_queue.status_code == 303, at_queue.text
    assert at_queue.headers["location"] == "https://example.com/private/secret.txt"
    unsigned = httpx.get(location.split("?")[0], follow_redirects=False)
    assert unsigned.status_code == 403


# the views are a projection of the log


def test_index_rebuilt_from_the_log_equals_the_live_one(server):
    ns = unique_namespace()
    index = server.client("index")
    complete_task(server, routes=[f"index.{ns}.ci.latest", f"index.{ns}.ci.rev.one"])
    index.insertTask(f"{ns}.ci.latest", entry(taskcluster.slugId(), rank=3, data={"k": [1, 2]}))
    index.insertTask(f"{ns}.ci.latest", entry(taskcluster.slugId(), rank=1))
    index.insertTask(f"{ns}.docs.page", entry(taskcluster.slugId(), rank=2.5))
    index.insertTask(f"{ns}.tmp.gone", entry(taskcluster.slugId()))
    index.deleteTask(f"{ns}.tmp.gone")
    index.insertTask(f"{ns}.old.x", entry(taskcluster.slugId(), expires=iso(utcnow())))
    wait_for_indexer(server)
    server.runtime.reaper.reap_once()

    runtime = server.runtime
    live = runtime.index_reads.snapshot()
    assert len(live["index_entries"]) >= 3 and len(live["index_namespaces"]) >= 5
    with runtime.store.unit_of_work() as session:
        for table in runtime.index_views.tables:
            session.execute_sql(f"DELETE FROM {table}")
    assert runtime.index_reads.snapshot() == {"index_entries": [], "index_namespaces": []}
    assert rebuild_index(runtime.log, runtime.index_views) > 0
    assert runtime.index_reads.snapshot() == live
