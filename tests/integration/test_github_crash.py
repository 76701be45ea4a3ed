"""The GitHub consumer killed (SIGKILL) in the middle of creating a build's tasks, and started again.

A push whose `.taskcluster.yml` describes many tasks is delivered to a
`cairn serve` subprocess; once some of the tasks exist, and before all do,
the process is killed. A new process on the same database finishes the
build: every task the file describes exists exactly once, under the ids
derived from the delivery, and the build is recorded once.
"""

from __future__ import annotations

import signal

import taskcluster

from tests.acceptance.github_fake import APP_ID, PRIVATE_KEY, FakeGithub
from tests.acceptance.github_helpers import OWNER, REPO, WEBHOOK_SECRET, deliver, payload, wait_for
from tests.conftest import free_port
from tests.integration.cairn_process import root_options, start_server, stop_server

SHA = "6113728f27ae82c7b1a177c8d03f9e96e0adf246"
TASKS = 150
QUEUE_ID = "cairn-test/github-crash"

MANY = """\
version: 1
tasks:
  $map: {$eval: 'range(0, %d)'}
  each(i):
    taskId: {$eval: 'as_slugid("task-" + str(i))'}
    taskQueueId: %s
    deadline: {$fromNow: '1 hour'}
    payload: {command: [[sh, -c, "echo ${i}"]], maxRunTime: 60}
    metadata: {name: 'task ${i}', description: one of many, owner: ci@example.com, source: https://example.com}
""" % (TASKS, QUEUE_ID)


class Served:
    """Just enough of a live server for the delivery helper: its root URL."""

    def __init__(self, root_url: str):
        self.root_url = root_url


def group_size(queue: taskcluster.Queue, group: str) -> int:
    """Tasks in ``group``: none while it is not there yet (the build is recorded before its first task)."""
    count, query = 0, {}
    while True:
        try:
            page = queue.listTaskGroup(group, query=query)
        except taskcluster.exceptions.TaskclusterRestFailure as e:
            if e.status_code == 404 and not query:
                return 0
            raise
        count += len(page["tasks"])
        if not page.get("continuationToken"):
            return count
        query = {"continuationToken": page["continuationToken"]}


def builds(github_client: taskcluster.Github) -> list[dict]:
    return github_client.builds()["builds"]


def test_a_consumer_killed_mid_build_creates_every_task_exactly_once(database_url, tmp_path):
    github = FakeGithub().start()
    github.repo(OWNER, REPO, default_branch="master").commit({".taskcluster.yml": MANY}, branch="master", sha=SHA)
    port = free_port()
    root_url = f"http://127.0.0.1:{port}"
    settings = dict(github_webhook_secret=WEBHOOK_SECRET, github_app_id=APP_ID, github_private_key=PRIVATE_KEY,
                    github_api_url=github.url, log_level="error")
    server = start_server(database_url, tmp_path, port, **settings)
    try:
        options = root_options(root_url)
        taskcluster.Auth(options).createRole(f"repo:github.com/{OWNER}/{REPO}:*", {
            "description": "tasks from GitHub",
            "scopes": [f"queue:create-task:highest:{QUEUE_ID}", "queue:create-task:project:none"],
        })
        queue, gh = taskcluster.Queue(options), taskcluster.Github(options)
        response, delivery_id = deliver(Served(root_url), "push", payload("push.none.4"))
        assert response.status_code < 300, response.text
        group = wait_for(lambda: builds(gh), timeout=60, what="the build to be recorded")[0]["taskGroupId"]
        wait_for(lambda: group_size(queue, group) > 0, timeout=60, what="the first tasks")
        server.send_signal(signal.SIGKILL)
        server.wait(10)

        # What the killed process left, read by a process that cannot act on GitHub (no app):
        # some tasks, not all (else this test would prove nothing).
        server = start_server(database_url, tmp_path, port, github_webhook_secret=WEBHOOK_SECRET)
        left = group_size(queue, group)
        stop_server(server)
        assert 0 < left < TASKS, f"the kill came after {left} of {TASKS} tasks"

        server = start_server(database_url, tmp_path, port, **settings)
        wait_for(lambda: group_size(queue, group) >= TASKS, timeout=120, what="every task")
        wait_for(lambda: github.statuses(OWNER, REPO), timeout=60, what="the pending status")
        assert group_size(queue, group) == TASKS
        assert [b["taskGroupId"] for b in builds(gh)] == [group]
        names = sorted(t["task"]["metadata"]["name"] for t in queue.listTaskGroup(group)["tasks"])
        assert len(set(names)) == len(names)
    finally:
        stop_server(server)
        github.stop()
