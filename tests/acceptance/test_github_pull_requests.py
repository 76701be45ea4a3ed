"""Pull requests, comments and releases from GitHub: the default branch's policies, roles, the trigger format."""

from __future__ import annotations

import pytest

from tests.acceptance.github_helpers import (  # noqa: F401 - fixtures
    OWNER,
    REPO,
    WORKER_QUEUE,
    deliver,
    github,
    handled,
    payload,
    repo,
    server,
    settings_overrides,
    taskcluster_yml,
    wait_for,
)

HEAD = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"  # pull_request.opened.1's head sha
PUSHED = "6113728f27ae82c7b1a177c8d03f9e96e0adf246"


def with_policy(policy: str) -> str:
    return taskcluster_yml().replace("pullRequests: collaborators", f"pullRequests: {policy}")


def created_tasks(server, delivery) -> list[dict]:
    assert delivery.outcome == "created", delivery.detail
    return server.client("queue").listTaskGroup(delivery.detail["taskGroupId"])["tasks"]


@pytest.mark.parametrize("policy", ["collaborators", "collaborators_quiet"])
def test_a_non_collaborators_pull_request_creates_nothing(server, github, repo, policy):
    repo.collaborators.clear()
    repo.commit({".taskcluster.yml": with_policy(policy)}, branch="master")
    repo.commit({".taskcluster.yml": with_policy("public")}, sha=HEAD)  # the PR's own policy does not count
    _, delivery_id = deliver(server, "pull_request", payload("pull_request.opened.1"))
    delivery = handled(server, delivery_id)
    assert delivery.outcome == "refused"
    assert server.client("github").builds()["builds"] == []
    comments = github.recorded("POST", f"/repos/{OWNER}/{REPO}/issues/2/comments")
    if policy == "collaborators":
        assert len(comments) == 1
        assert "No Taskcluster jobs started for this pull request" in comments[0].body["body"]
    else:
        assert comments == []
    assert github.recorded("GET", f"/repos/{OWNER}/{REPO}/collaborators/Codertocat")


def test_a_collaborators_pull_request_runs_with_the_pull_request_role(server, github, repo):
    repo.commit({".taskcluster.yml": taskcluster_yml()}, branch="master")
    repo.commit({".taskcluster.yml": taskcluster_yml("echo ${tasks_for}")}, sha=HEAD)
    _, delivery_id = deliver(server, "pull_request", payload("pull_request.opened.1"))
    tasks = created_tasks(server, handled(server, delivery_id))
    assert tasks[0]["task"]["payload"]["command"] == [["sh", "-c", "echo github-pull-request"]]
    build = server.client("github").builds()["builds"][0]
    assert (build["sha"], build["eventType"], build["pullRequestNumber"]) == (HEAD, "pull_request.opened", 2)
    wait_for(lambda: github.statuses(OWNER, REPO), what="the pending status")
    assert github.statuses(OWNER, REPO)[0]["context"] == "Taskcluster (pull_request)"


def test_public_restricted_gives_strangers_the_untrusted_role(server, github, repo):
    repo.collaborators.clear()
    server.client("auth").createRole(f"repo:github.com/{OWNER}/{REPO}:pull-request-untrusted", {
        "description": "strangers", "scopes": [],
    })
    repo.commit({".taskcluster.yml": with_policy("public_restricted")}, branch="master")
    repo.commit({".taskcluster.yml": taskcluster_yml("echo ${tasks_for}")}, sha=HEAD)
    _, delivery_id = deliver(server, "pull_request", payload("pull_request.opened.1"))
    tasks = created_tasks(server, handled(server, delivery_id))
    assert tasks[0]["task"]["payload"]["command"] == [["sh", "-c", "echo github-pull-request-untrusted"]]


def test_a_collaborators_comment_runs_the_command_when_comments_are_allowed(server, github, repo):
    allowing = taskcluster_yml("echo ${event.taskcluster_comment}").replace(
        "pullRequests: collaborators", "pullRequests: collaborators\n  allowComments: collaborators")
    repo.commit({".taskcluster.yml": allowing}, branch="master")
    repo.commit({".taskcluster.yml": allowing}, sha=HEAD)
    repo.pulls[1] = payload("pull_request.opened.1")["pull_request"] | {"number": 1}
    body = payload("issue_comment.created.0")
    body["issue"]["pull_request"] = {"url": f"https://api.github.com/repos/{OWNER}/{REPO}/pulls/1"}
    body["comment"]["body"] = "Looks good.\n/taskcluster run the tests\n"
    _, delivery_id = deliver(server, "issue_comment", body)
    tasks = created_tasks(server, handled(server, delivery_id))
    assert tasks[0]["task"]["payload"]["command"] == [["sh", "-c", "echo run the tests"]]
    reactions = wait_for(lambda: github.recorded("POST", "/reactions"), what="a reaction")
    assert reactions[0].body == {"content": "+1"}


def test_a_comment_is_refused_without_allow_comments(server, github, repo):
    repo.commit({".taskcluster.yml": taskcluster_yml()}, branch="master")
    repo.commit({".taskcluster.yml": taskcluster_yml()}, sha=HEAD)
    repo.pulls[1] = payload("pull_request.opened.1")["pull_request"] | {"number": 1}
    body = payload("issue_comment.created.0")
    body["issue"]["pull_request"] = {"url": f"https://api.github.com/repos/{OWNER}/{REPO}/pulls/1"}
    body["comment"]["body"] = "/taskcluster run"
    _, delivery_id = deliver(server, "issue_comment", body)
    assert handled(server, delivery_id).outcome == "refused"
    comments = github.recorded("POST", f"/repos/{OWNER}/{REPO}/issues/1/comments")
    assert "No Taskcluster jobs started for comment" in comments[0].body["body"]
    assert server.client("github").builds()["builds"] == []


V2 = f"""\
version: 2
x-task: &task
  taskQueueId: {WORKER_QUEUE}
  metadata: {{name: v2, description: trigger format, owner: ci@example.com, source: "${{repository}}"}}
onPush:
  - <<: *task
    payload: {{command: [[sh, -c, "echo push of ${{branch}} at ${{revision}}"]], maxRunTime: 60}}
onPullRequest:
  - <<: *task
    payload: {{command: [[sh, -c, "echo PR ${{pr_number}}: ${{pr_title}}"]], maxRunTime: 60}}
onRelease:
  - <<: *task
    payload: {{command: [[sh, -c, "echo release ${{tag}}"]], maxRunTime: 60}}
"""


def test_a_version_2_file_creates_the_tasks_of_each_trigger(server, github, repo):
    repo.commit({".taskcluster.yml": V2}, branch="master", sha=PUSHED)
    repo.commit({".taskcluster.yml": V2}, sha=HEAD)
    repo.refs["0.0.1"] = PUSHED

    def command_of(event: str, body: dict) -> list:
        _, delivery_id = deliver(server, event, body)
        tasks = created_tasks(server, handled(server, delivery_id))
        assert len(tasks) == 1
        return tasks[0]["task"]["payload"]["command"][0][2]

    assert command_of("push", payload("push.none.4")) == f"echo push of master at {PUSHED}"
    assert command_of("pull_request", payload("pull_request.opened.1")) == (
        "echo PR 2: Update the README with new information."
    )
    assert command_of("release", payload("release.published.0")) == "echo release 0.0.1"
    roles = {b["eventType"] for b in server.client("github").builds()["builds"]}
    assert roles == {"push", "pull_request.opened", "release"}


SHARED = """\
version: 1
tasks:
  - taskId: {$eval: as_slugid("shared")}
    taskQueueId: %s
    deadline: {$fromNow: '1 hour'}
    payload:
      command: [[sh, -c, "echo ${greeting} for ${tasks_for} from ${taskclusterYmlRepo}@${taskclusterYmlRevision}"]]
      maxRunTime: 60
    metadata: {name: shared, description: shared CI, owner: ci@example.com, source: "${taskclusterYmlRepo}"}
""" % WORKER_QUEUE

PROJECT = """\
version: 1
config-from: github.com/shared-org/ci-config/ci/taskcluster.yml@stable
context:
  greeting: hello from the project
  tasks_for: github-pretend
"""


def test_config_from_renders_the_remote_file_with_the_merged_context(server, github, repo):
    shared = github.repo("shared-org", "ci-config")
    revision = shared.commit({"ci/taskcluster.yml": SHARED}, branch="stable")
    repo.commit({".taskcluster.yml": PROJECT}, branch="master", sha=PUSHED)
    _, delivery_id = deliver(server, "push", payload("push.none.4"))
    tasks = created_tasks(server, handled(server, delivery_id))
    command = tasks[0]["task"]["payload"]["command"][0][2]
    # The project's context is merged in, but tasks_for stays Cairn's.
    assert command == f"echo hello from the project for github-push from https://github.com/shared-org/ci-config@{revision}"
    assert github.recorded("GET", "/repos/shared-org/ci-config/commits/stable")
