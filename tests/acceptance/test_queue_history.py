"""The history of a task and of a task group over the queue's API: every event, in order, with who did it."""

from __future__ import annotations

import pytest
import taskcluster
from taskcluster.exceptions import TaskclusterRestFailure

from cairn.api.queue.service import queue as queue_service
from tests.acceptance.cairn_clients import cairn_client
from tests.acceptance.queue_helpers import claim_one, task_definition

CairnQueue = cairn_client(taskcluster.Queue, queue_service)


def test_task_and_group_history_in_log_order_with_actors(server):
    queue = CairnQueue(server.options())
    group_id, task_id = taskcluster.slugId(), taskcluster.slugId()
    queue.createTask(task_id, task_definition(taskGroupId=group_id, payload={"env": {"GH_TOKEN": "s3cret"}}))
    claim = claim_one(queue)
    worker = taskcluster.Queue({"rootUrl": server.root_url, "credentials": claim["credentials"], "maxRetries": 0})
    worker.reportFailed(task_id, "0")

    events = queue.taskHistory(task_id)["events"]
    assert [e["type"] for e in events] == ["TaskDefined", "TaskRunPending", "TaskRunClaimed", "TaskRunResolved"]
    assert [e["clientId"] for e in events[:3]] == ["static/root"] * 3
    assert events[3]["clientId"].startswith(f"task-client/{task_id}/0/")
    assert "s3cret" not in str(events) and "GH_TOKEN" not in str(events)

    first = queue.taskHistory(task_id, query={"limit": 3})
    rest = queue.taskHistory(task_id, query={"limit": 3, "continuationToken": first["continuationToken"]})
    assert first["events"] + rest["events"] == events

    group = queue.taskGroupHistory(group_id)["events"]
    assert [e["position"] for e in group] == sorted(e["position"] for e in group)
    assert [e for e in group if e.get("taskId") == task_id] == [{**e, "taskId": task_id} for e in events]
    assert {e["type"] for e in group if "taskId" not in e} == {"TaskGroupDefined", "TaskGroupResolved"}
    paged, query = [], {"limit": 2}
    while True:
        result = queue.taskGroupHistory(group_id, query=query)
        paged += result["events"]
        if "continuationToken" not in result:
            break
        query["continuationToken"] = result["continuationToken"]
    assert paged == group


def test_history_needs_the_read_scopes_and_an_existing_task(server):
    root = CairnQueue(server.options())
    task_id = taskcluster.slugId()
    root.createTask(task_id, task_definition())
    auth = server.client("auth")
    token = auth.createClient("test/reader", {"description": "", "expires": taskcluster.fromNowJSON("1 hour"),
                                              "scopes": [f"queue:get-task:{task_id}"]})["accessToken"]
    reader = CairnQueue(server.options(client_id="test/reader", access_token=token))
    assert reader.taskHistory(task_id)["events"][0]["type"] == "TaskDefined"
    refused = [lambda: reader.taskGroupHistory(task_id), lambda: reader.taskHistory(taskcluster.slugId())]
    missing = [lambda: root.taskHistory(taskcluster.slugId()), lambda: root.taskGroupHistory(taskcluster.slugId())]
    for calls, code in ((refused, "InsufficientScopes"), (missing, "ResourceNotFound")):
        for call in calls:
            with pytest.raises(TaskclusterRestFailure) as failure:
                call()
            assert failure.value.body["code"] == code
