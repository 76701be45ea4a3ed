"""What Cairn says to GitHub besides a build's own reports: API requests, cancellations, reruns, outages."""

from __future__ import annotations

from tests.acceptance.github_helpers import (  # noqa: F401 - fixtures
    OWNER,
    REPO,
    deliver,
    github,
    handled,
    payload,
    repo,
    server,
    settings_overrides,
    start_worker,
    taskcluster_yml,
    wait_for,
)

SHA = "6113728f27ae82c7b1a177c8d03f9e96e0adf246"
HEAD = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"


def test_create_status_and_create_comment_are_made_on_github(server, github, repo):
    # A delivery through the installation tells Cairn the App is installed for the owner.
    _, delivery_id = deliver(server, "ping", payload("ping.none.0", repository=payload("push.none.4")["repository"]))
    handled(server, delivery_id)
    gh = server.client("github")
    gh.createStatus(OWNER, REPO, SHA, {"state": "failure", "target_url": "https://example.com/x",
                                       "description": "from the API", "context": "external"})
    gh.createComment(OWNER, REPO, 2, {"body": "a comment through Cairn"})
    statuses = wait_for(lambda: github.statuses(OWNER, REPO), what="the status")
    assert statuses == [{"state": "failure", "target_url": "https://example.com/x", "description": "from the API",
                         "context": "external"}]
    comments = wait_for(lambda: github.recorded("POST", "/issues/2/comments"), what="the comment")
    assert comments[0].body == {"body": "a comment through Cairn"}
    # Each recorded request is made once, and recorded as posted.
    wait_for(lambda: not server.runtime.github.reads.due_requests("9999-12-31T00:00:00.000Z", 10),
             what="both requests recorded as posted")
    assert len(github.statuses(OWNER, REPO)) == 1 and len(github.recorded("POST", "/issues/2/comments")) == 1


def test_a_new_push_to_a_pull_request_cancels_the_unfinished_groups_of_the_earlier_one(server, github, repo):
    repo.commit({".taskcluster.yml": taskcluster_yml()}, branch="master")
    repo.commit({".taskcluster.yml": taskcluster_yml()}, sha=HEAD)
    newer = repo.commit({".taskcluster.yml": taskcluster_yml()})
    _, first = deliver(server, "pull_request", payload("pull_request.opened.1"))
    first_group = handled(server, first).detail["taskGroupId"]
    synchronize = payload("pull_request.synchronize.0")
    synchronize["pull_request"]["head"]["sha"] = newer
    _, second = deliver(server, "pull_request", synchronize)
    second_group = handled(server, second).detail["taskGroupId"]

    queue = server.client("queue")
    cancelled = queue.listTaskGroup(first_group)["tasks"][0]["status"]
    assert (cancelled["state"], cancelled["runs"][-1]["reasonResolved"]) == ("exception", "canceled")
    assert queue.listTaskGroup(second_group)["tasks"][0]["status"]["state"] == "pending"
    states = {b["taskGroupId"]: b["state"] for b in server.client("github").builds()["builds"]}
    assert states == {first_group: "cancelled", second_group: "pending"}


def test_a_rerequested_check_suite_reruns_the_builds_tasks(server, github, repo, start_worker):
    repo.commit({".taskcluster.yml": taskcluster_yml()}, branch="master", sha=SHA)
    start_worker()
    _, delivery_id = deliver(server, "push", payload("push.none.4"))
    group = handled(server, delivery_id).detail["taskGroupId"]
    wait_for(lambda: [s for s in github.statuses(OWNER, REPO) if s["state"] == "success"], what="success")

    suite = payload("check_suite.rerequested.0", repository=payload("push.none.4")["repository"])
    suite["check_suite"]["head_sha"] = SHA
    _, rerun = deliver(server, "check_suite", suite)
    assert handled(server, rerun).outcome == "rerun"
    queue = server.client("queue")
    task_id = queue.listTaskGroup(group)["tasks"][0]["status"]["taskId"]
    status = wait_for(lambda: (lambda s: s if len(s["runs"]) == 2 and s["state"] == "completed" else None)(
        queue.status(task_id)["status"]), what="the rerun to complete")
    assert [r["reasonCreated"] for r in status["runs"]] == ["scheduled", "rerun"]
    states = [s["state"] for s in wait_for(
        lambda: (lambda s: s if len(s) >= 4 and s[-1]["state"] == "success" else None)(github.statuses(OWNER, REPO)),
        what="the statuses of the rerun")]
    assert states == ["pending", "success", "pending", "success"]


def test_a_github_outage_delays_a_build_but_never_loses_it(server, github, repo):
    repo.commit({".taskcluster.yml": taskcluster_yml()}, branch="master", sha=SHA)
    # More failures than one call's retries: the delivery is taken again later, from the start.
    github.fail("GET", f"/repos/{OWNER}/{REPO}/contents/", 502, times=8)
    _, delivery_id = deliver(server, "push", payload("push.none.4"))
    delivery = handled(server, delivery_id, timeout=120)
    assert delivery.outcome == "created"
    assert len([c for c in github.failed_calls if "/contents/" in c.path]) == 8
    assert len(server.client("github").builds()["builds"]) == 1


def test_a_request_github_cannot_take_now_is_tried_again_and_one_it_refuses_is_not(server, github, repo):
    _, delivery_id = deliver(server, "ping", payload("ping.none.0", repository=payload("push.none.4")["repository"]))
    handled(server, delivery_id)
    # More failures than one attempt's retries: the attempt is recorded as failed, and made again later.
    github.fail("POST", f"/repos/{OWNER}/{REPO}/statuses/", 502, times=6)
    gh = server.client("github")
    gh.createStatus(OWNER, REPO, SHA, {"state": "success", "context": "later"})
    assert wait_for(lambda: github.statuses(OWNER, REPO), timeout=90, what="the status")[0]["context"] == "later"
    assert len(github.failed_calls) == 6
    # GitHub refuses a comment on a repository it does not have: recorded as failed, never made again.
    gh.createComment(OWNER, "No-Such-Repo", 1, {"body": "lost"})
    wait_for(lambda: github.recorded("POST", "/repos/Codertocat/No-Such-Repo/issues/1/comments"), what="the attempt")
    wait_for(lambda: not server.runtime.github.reads.due_requests("9999-12-31T00:00:00.000Z", 10),
             what="no request left due")
    assert len(github.recorded("POST", "/No-Such-Repo/")) == 1
