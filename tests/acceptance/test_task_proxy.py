"""taskclusterProxy end to end: a real worker runs tasks that call Cairn through their proxy.

Claims last 3 seconds here, so a run is reclaimed about every second and gets
new credentials each time.
"""

from __future__ import annotations

import sys

import taskcluster

from tests.acceptance.test_worker import (  # noqa: F401
    create,
    resolved,
    server,
    settings_overrides,
    start_worker,
    task_log,
)

SIGN_AND_FETCH = """
import os, sys, urllib.request, urllib.error
proxy, target = os.environ["TASKCLUSTER_PROXY_URL"], sys.argv[1]

class Keep(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args):
        return None

try:
    urllib.request.build_opener(Keep).open(urllib.request.Request(proxy + "/bewit", data=target.encode()))
except urllib.error.HTTPError as e:
    assert e.code == 303, e.code
    signed = e.headers["Location"]
print("signed", signed.startswith(target + "?bewit="))
print("content", urllib.request.urlopen(signed).read().decode().strip())
try:
    urllib.request.urlopen(target)
except urllib.error.HTTPError as e:
    print("unsigned", e.code)
"""

TWICE_APART = """
import os, sys, time, urllib.request
url = os.environ["TASKCLUSTER_PROXY_URL"] + "/api/queue/v1/task/" + os.environ["TASK_ID"] + "/status"
for _ in range(2):
    with urllib.request.urlopen(url) as response:
        print("status", response.status, response.headers["X-Taskcluster-Proxy-Temp-ClientId"])
        print("endpoint", response.headers["X-Taskcluster-Endpoint"])
    time.sleep(2.5)
"""


def test_a_task_signs_a_private_artifact_url_with_bewit(server, start_worker):
    queue = server.client("queue")
    start_worker(capacity=2)
    producer = create(queue, {
        "command": "echo the secret > secret.txt",
        "artifacts": [{"name": "private/secret.txt", "path": "secret.txt", "type": "file"}],
    })
    assert resolved(queue, producer)["state"] == "completed"
    target = f"{server.root_url}/api/queue/v1/task/{producer}/runs/0/artifacts/private/secret.txt"
    consumer = taskcluster.slugId()
    create(queue, {
        "command": [[sys.executable, "-c", SIGN_AND_FETCH, target]],
        "features": {"taskclusterProxy": True},
    }, taskId=consumer, scopes=["queue:get-artifact:private/secret.txt"])

    assert resolved(queue, consumer)["state"] == "completed", task_log(queue, consumer)
    log = task_log(queue, consumer)
    assert "signed True\n" in log
    assert "content the secret\n" in log
    assert "unsigned 403\n" in log


def test_the_proxy_signs_with_the_credentials_of_the_latest_reclaim(server, start_worker):
    queue = server.client("queue")
    start_worker()
    task_id = taskcluster.slugId()
    create(queue, {"command": [[sys.executable, "-c", TWICE_APART]], "features": {"taskclusterProxy": True}},
           taskId=task_id, scopes=[f"queue:status:{task_id}"])

    assert resolved(queue, task_id)["state"] == "completed", task_log(queue, task_id)
    lines = task_log(queue, task_id).splitlines()
    clients = [line.split()[2] for line in lines if line.startswith("status 200 ")]
    assert len(clients) == 2
    assert all(c.startswith(f"task-client/{task_id}/0/on/tests/w1/until/") for c in clients)
    assert clients[0] != clients[1], "the second call used the credentials of a later claim"
    assert f"endpoint {server.root_url}/api/queue/v1/task/{task_id}/status" in lines
