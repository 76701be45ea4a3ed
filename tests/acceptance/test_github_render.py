"""renderTaskclusterYml through taskcluster.Github: what a file would create for each kind of event
(version 1 and the trigger format), with its role's scopes, creating nothing; errors are InputError."""

from __future__ import annotations

import pytest
from taskcluster.exceptions import TaskclusterRestFailure

from tests.acceptance.hooks_helpers import raw_event_rows

V1 = """
version: 1
policy:
  pullRequests: public
tasks:
  - taskId: {$eval: as_slugid("build")}
    taskQueueId: proj-testing/ci
    deadline: {$fromNow: '1 hour'}
    payload:
      command: [echo, '${tasks_for}', '${vars.revision}']
    metadata:
      name: build for ${tasks_for}
      description: renders
      owner: ${vars.user_email}
      source: ${vars.repository}
"""

V2 = """
version: 2
primaryBranch: main
x-task: &task
  taskQueueId: proj-testing/ci
  payload: {command: [echo, '${revision}']}
  metadata: &metadata
    name: tests
    description: make test
    owner: ${user_email}
    source: ${repository}
onPush:
  - *task
onPullRequest:
  - <<: *task
    metadata: {<<: *metadata, name: 'tests of #${pr_number}'}
onRelease:
  - <<: *task
    metadata: {<<: *metadata, name: 'release ${tag}'}
"""

ROLE = "assume:repo:github.com/taskcluster/testing"


def render(server, body: str, event: dict, **extra) -> dict:
    return server.anonymous("github").renderTaskclusterYml({"body": body, "fakeEvent": event, **extra})


@pytest.mark.parametrize(
    "event, role",
    [
        ({"type": "github-push"}, "branch:main"),
        ({"type": "github-push", "overrides": {"ref": "refs/tags/v1.2"}}, "tag:v1.2"),
        ({"type": "github-push", "overrides": {"branch": "feature"}}, "branch:feature"),
        ({"type": "github-pull-request", "action": "opened"}, "pull-request"),
        ({"type": "github-pull-request-untrusted", "action": "synchronize"}, "pull-request-untrusted"),
        ({"type": "github-release", "action": "published"}, "release:published"),
        ({"type": "github-issue-comment", "action": "created"}, "pull-request"),
    ],
    ids=["push", "tag", "branch", "pull-request", "untrusted", "release", "comment"],
)
def test_a_version_1_file_renders_for_each_kind_of_event_with_its_role(server, runtime, event, role):
    rows = raw_event_rows(runtime)
    rendered = render(server, V1, event)
    (task,) = rendered["tasks"]
    definition = task["task"]
    assert definition["schedulerId"] == "taskcluster-github"
    assert definition["taskGroupId"] == task["taskId"]  # a sole task is its own group
    tasks_for = event["type"]
    assert definition["payload"]["command"] == ["echo", tasks_for, "b79ce60be819cdc482c9c6a84dc3c457959aa66f"]
    assert definition["metadata"]["source"] == "https://github.com/taskcluster/testing"
    assert f"{ROLE}:{role}" in rendered["scopes"]
    assert raw_event_rows(runtime) == rows  # nothing created


def test_the_organization_and_repository_name_the_role(server):
    rendered = render(server, V1, {"type": "github-push"}, organization="my-org", repository="my.repo")
    assert "assume:repo:github.com/my-org/my.repo:branch:main" in rendered["scopes"]
    assert rendered["tasks"][0]["task"]["metadata"]["source"] == "https://github.com/my-org/my.repo"


def test_the_trigger_format_renders_the_trigger_of_the_event(server):
    push = render(server, V2, {"type": "github-push"})
    assert [t["task"]["metadata"]["name"] for t in push["tasks"]] == ["tests"]
    pull = render(server, V2, {"type": "github-pull-request", "action": "opened"})
    assert [t["task"]["metadata"]["name"] for t in pull["tasks"]] == ["tests of #1"]
    release = render(server, V2, {"type": "github-release", "action": "published"})
    assert [t["task"]["metadata"]["name"] for t in release["tasks"]] == ["release v1.0.0"]
    other_branch = render(server, V2, {"type": "github-push", "overrides": {"branch": "feature"}})
    assert other_branch["tasks"] == []


@pytest.mark.parametrize(
    "body, words",
    [
        ("version: 1\ntasks: [\n", "YAML"),
        ("version: 7\ntasks: []\n", "version"),
        ("version: 1\ntasks: {$eval: 'nonsense('}\n", "JSON-e"),
        ("version: 1\nconfig-from: github.com/org/shared/ci.yml@main\n", "config-from"),
        ("", ""),
    ],
    ids=["yaml", "version", "json-e", "config-from-without-app", "empty"],
)
def test_a_file_that_cannot_be_rendered_is_an_input_error(server, body, words):
    with pytest.raises(TaskclusterRestFailure) as refused:
        render(server, body, {"type": "github-push"})
    assert (refused.value.status_code, refused.value.body["code"]) == (400, "InputError")
    assert words in refused.value.body["message"]


def test_the_request_is_checked_against_its_schema(server):
    with pytest.raises(TaskclusterRestFailure) as refused:
        render(server, V1, {"type": "github-pull-request"})  # no action
    assert refused.value.body["code"] == "InputValidationError"
    with pytest.raises(TaskclusterRestFailure) as refused:
        render(server, V1, {"type": "github-push"}, organization="bad org")
    assert refused.value.body["code"] == "InputValidationError"
