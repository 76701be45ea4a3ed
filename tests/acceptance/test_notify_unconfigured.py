"""A deployment that configured no e-mail, Slack or Matrix: the API says so, task routes record why nothing went."""

from __future__ import annotations

import pytest
import taskcluster

from tests.acceptance.notify_fakes import wait_until
from tests.acceptance.queue_helpers import claim_one, task_definition


@pytest.mark.parametrize(
    ("method", "body", "setting"),
    [
        ("email", {"address": "a@example.org", "subject": "s", "content": "c"}, "CAIRN_SMTP_URL"),
        ("slack", {"channelId": "C1", "text": "t"}, "CAIRN_SLACK_TOKEN"),
        ("matrix", {"roomId": "!r:example.org", "body": "b"}, "CAIRN_MATRIX_BASE_URL"),
    ],
)
def test_unconfigured_channels_are_refused_with_the_setting_to_set(server, method, body, setting):
    with pytest.raises(taskcluster.TaskclusterRestFailure) as refused:
        getattr(server.client("notify"), method)(body)
    assert refused.value.status_code == 400
    assert refused.value.body["code"] == "InputError" and setting in refused.value.body["message"]


def test_task_routes_to_unconfigured_channels_record_skipped_notifications(server):
    queue = server.client("queue")
    task_id = taskcluster.slugId()
    routes = ["notify.email.a@example.org.on-completed", "notify.slack-channel.C1.on-completed",
              "notify.matrix-room.!r:example.org.on-completed", "index.some.path"]
    queue.createTask(task_id, task_definition(routes=routes))
    queue.reportCompleted(task_id, str(claim_one(queue)["runId"]))
    found = wait_until(lambda: len(server.runtime.notify.reads.of_task(task_id)) == 3
                       and server.runtime.notify.reads.of_task(task_id))
    assert {n["channel"]: (n["state"], n["lastError"]) for n in found} == {
        "email": ("skipped", "email is not configured"),
        "slack-channel": ("skipped", "slack-channel is not configured"),
        "matrix-room": ("skipped", "matrix-room is not configured"),
    }
    assert queue.status(task_id)["status"]["state"] == "completed"
    assert server.client("notify").ping()["alive"] is True
