"""Pushes from GitHub end to end: a signed delivery, the tasks of `.taskcluster.yml`, the worker, the statuses.

Every test posts a real ``push`` example from ``@octokit/webhooks-examples``
to the webhook receiver of a live Cairn configured as a GitHub App of a
fake GitHub, with the reference worker running what gets created.
"""

from __future__ import annotations

from tests.acceptance.github_helpers import (  # noqa: F401 - fixtures
    OWNER,
    REPO,
    WORKER_QUEUE,
    deliver,
    github,
    group_tasks,
    handled,
    payload,
    repo,
    server,
    settings_overrides,
    start_worker,
    taskcluster_yml,
    wait_for,
)

SHA = "6113728f27ae82c7b1a177c8d03f9e96e0adf246"  # push.none.4's `after`


def statuses_until(github, final: str) -> list[dict]:
    return wait_for(
        lambda: (lambda s: s if s and s[-1]["state"] == final else None)(github.statuses(OWNER, REPO)),
        what=f"a {final} status",
    )


def test_a_push_creates_the_tasks_of_the_file_and_reports_pending_then_success(server, github, repo, start_worker):
    repo.commit({".taskcluster.yml": taskcluster_yml("echo built ${event.after}")}, branch="master", sha=SHA)
    start_worker()
    response, delivery_id = deliver(server, "push", payload("push.none.4"))
    assert response.status_code in (200, 204), response.text

    delivery = handled(server, delivery_id)
    assert delivery.outcome == "created", delivery.detail
    group = delivery.detail["taskGroupId"]
    tasks = group_tasks(server, group)
    assert len(tasks) == 1
    task = tasks[0]["task"]
    assert task["schedulerId"] == "taskcluster-github"
    assert task["taskQueueId"] == WORKER_QUEUE
    assert "statuses" in task["routes"]
    assert task["metadata"]["description"] == "build for github-push"

    statuses = statuses_until(github, "success")
    assert [s["state"] for s in statuses] == ["pending", "success"]
    for status in statuses:
        assert status["context"] == "Taskcluster (push)"
        assert status["target_url"] == f"{server.root_url}/tasks/groups/{group}"
    assert github.recorded("POST", f"/repos/{OWNER}/{REPO}/statuses/{SHA}")
    build = wait_for(lambda: [(b["taskGroupId"], b["state"]) for b in server.client("github").builds(
        query={"organization": OWNER})["builds"] if b["state"] != "pending"], what="the build to succeed")
    assert build == [(group, "success")]
    assert server.client("queue").status(tasks[0]["status"]["taskId"])["status"]["state"] == "completed"


def test_a_failing_task_reports_failure(server, github, repo, start_worker):
    repo.commit({".taskcluster.yml": taskcluster_yml("echo broken; exit 3")}, branch="master", sha=SHA)
    start_worker()
    _, delivery_id = deliver(server, "push", payload("push.none.4"))
    assert handled(server, delivery_id).outcome == "created"
    statuses = statuses_until(github, "failure")
    wait_for(lambda: server.client("github").builds()["builds"][0]["state"] == "failure", what="a failed build")
    # The group resolving as failed too says nothing GitHub does not show already.
    reporter = server.runtime.processes["github-reporter"]
    wait_for(lambda: reporter.position() >= server.runtime.log.recorder.max_notification_id(),
             what="the reporter to read the whole log")
    assert [s["state"] for s in github.statuses(OWNER, REPO)] == ["pending", "failure"]
    assert statuses[-1]["description"] == "TaskGroup: failure"


def test_skip_ci_in_the_head_commit_creates_nothing(server, github, repo):
    repo.commit({".taskcluster.yml": taskcluster_yml()}, branch="master", sha=SHA)
    body = payload("push.none.4")
    body["head_commit"]["message"] = "Fix the docs [skip ci]"
    body["commits"][-1]["message"] = "Fix the docs [skip ci]"
    _, delivery_id = deliver(server, "push", body)
    delivery = handled(server, delivery_id)
    assert delivery.outcome == "skipped"
    assert server.client("github").builds()["builds"] == []
    assert github.statuses(OWNER, REPO) == []


def test_an_invalid_file_is_answered_with_a_commit_comment(server, github, repo):
    repo.commit({".taskcluster.yml": "version: 1\ntasks:\n  - {$if: 'tasks_for ==', then: {}}\n"},
                branch="master", sha=SHA)
    _, delivery_id = deliver(server, "push", payload("push.none.4"))
    delivery = handled(server, delivery_id)
    assert delivery.outcome == "failed"
    comments = github.recorded("POST", f"/repos/{OWNER}/{REPO}/commits/{SHA}/comments")
    assert len(comments) == 1
    assert "Uh oh! Looks like an error!" in comments[0].body["body"]
    assert delivery.detail["error"].splitlines()[0] in comments[0].body["body"]
    assert server.client("github").builds()["builds"] == []


def test_a_task_asking_for_more_than_the_role_is_refused_and_reported(server, github, repo):
    greedy = taskcluster_yml().replace("    payload:", "    scopes: [secrets:get:production]\n    payload:")
    repo.commit({".taskcluster.yml": greedy}, branch="master", sha=SHA)
    _, delivery_id = deliver(server, "push", payload("push.none.4"))
    delivery = handled(server, delivery_id)
    assert delivery.outcome == "failed"
    comment = github.recorded("POST", f"/commits/{SHA}/comments")[0].body["body"]
    assert "secrets:get:production" in comment
    assert f"assume:repo:github.com/{OWNER}/{REPO}:branch:master" in comment
    assert delivery.detail["created"] == []
    builds = server.client("github").builds()["builds"]
    assert [(b["taskGroupId"], b["state"]) for b in builds] == [(delivery.detail["taskGroupId"], "error")]


def test_a_redelivered_webhook_creates_nothing_new(server, github, repo):
    repo.commit({".taskcluster.yml": taskcluster_yml()}, branch="master", sha=SHA)
    body = payload("push.none.4")
    _, delivery_id = deliver(server, "push", body)
    group = handled(server, delivery_id).detail["taskGroupId"]
    response, _ = deliver(server, "push", body, delivery_id=delivery_id)
    assert response.status_code in (200, 204)
    wait_for(lambda: github.statuses(OWNER, REPO), what="the pending status")
    server.runtime.github_flow.builder.handle_delivery(delivery_id)  # handled: nothing again
    assert [t["status"]["taskId"] for t in group_tasks(server, group)] == [
        t["status"]["taskId"] for t in group_tasks(server, group)
    ]
    assert len(server.client("github").builds()["builds"]) == 1
    assert len(group_tasks(server, group)) == 1
    assert len(github.statuses(OWNER, REPO)) == 1
