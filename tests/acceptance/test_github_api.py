"""The github service through the official client ``taskcluster.Github``: builds, cancelBuilds,
badge, latest, repository, createStatus, createComment, and the monitoring endpoints.

Builds are recorded here as the consumer that creates task groups records
them (``GithubService.record_build``); every answer is checked against its
schema by the server itself (``validate_output``).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import taskcluster
from taskcluster.exceptions import TaskclusterRestFailure

from cairn.domain.aggregate import acting_as
from tests.acceptance.github_deliveries import WEBHOOK_SECRET, deliver, example
from tests.acceptance.queue_helpers import task_definition

OWNER, REPO = "Codertocat", "Hello-World"
T0 = datetime(2026, 11, 1, 10, 0, tzinfo=timezone.utc)


@pytest.fixture
def settings_overrides():
    return {"github_webhook_secret": WEBHOOK_SECRET}


def sha(char: str) -> str:
    return char * 40


def record_build(runtime: Any, minute: int, task_group_id: str | None = None, **fields: Any) -> str:
    group = task_group_id or taskcluster.slugId()
    values: dict[str, Any] = dict(
        organization=OWNER, repository=REPO, sha=sha("a"), event_type="push",
        event_id="2b5ce0a0-7b0c-11e9-8f0b-0e6e0e6b4e6f", installation_id=1, branch="master",
    )
    values.update(fields)
    with acting_as("github-tests"):
        runtime.github.service.record_build(group, created=T0 + timedelta(minutes=minute), **values)
    return group


def set_state(runtime: Any, group: str, state: str, minute: int) -> None:
    with acting_as("github-tests"):
        runtime.github.service.set_build_state(group, state, T0 + timedelta(minutes=minute))


def failure(call: Any, *args: Any, **kwargs: Any) -> TaskclusterRestFailure:
    with pytest.raises(TaskclusterRestFailure) as refused:
        call(*args, **kwargs)
    return refused.value


def client_with(server: Any, client_id: str, scopes: list[str]) -> Any:
    created = server.client("auth").createClient(
        client_id, {"description": "github tests", "expires": "3000-01-01T00:00:00.000Z", "scopes": scopes}
    )
    return server.client("github", client_id=client_id, access_token=created["accessToken"])


def test_monitoring_endpoints_answer(server):
    github = server.anonymous("github")
    assert github.ping()["alive"] is True
    assert github.lbheartbeat() in (None, {})
    assert isinstance(github.heartbeat(), dict)


def test_builds_are_listed_least_recently_updated_first_filtered_and_paged(server, runtime):
    github = server.client("github")
    a = record_build(runtime, 0)
    b = record_build(runtime, 1, sha=sha("b"), event_type="pull_request.opened", pull_request_number=2,
                     branch="changes")
    c = record_build(runtime, 2, organization="other-org", repository="tools", sha=sha("c"))
    set_state(runtime, a, "success", 3)

    listed = github.builds()["builds"]
    assert [x["taskGroupId"] for x in listed] == [b, c, a]
    first = listed[2]
    assert first == {
        "organization": OWNER, "repository": REPO, "sha": sha("a"), "state": "success", "taskGroupId": a,
        "eventType": "push", "eventId": "2b5ce0a0-7b0c-11e9-8f0b-0e6e0e6b4e6f",
        "created": "2026-11-01T10:00:00.000Z", "updated": "2026-11-01T10:03:00.000Z",
    }
    assert listed[0]["pullRequestNumber"] == 2 and "pullRequestNumber" not in first

    def groups(**query: str) -> list[str]:
        return [x["taskGroupId"] for x in github.builds(query=query)["builds"]]

    assert groups(organization=OWNER) == [b, a]
    assert groups(organization=OWNER, repository=REPO) == [b, a]
    assert groups(organization=OWNER, repository=REPO, sha=sha("a")) == [a]
    assert groups(organization=OWNER, repository=REPO, pullRequest="2") == [b]
    assert groups(organization="nobody") == []

    seen, token = [], None
    while True:
        query = {"limit": "1", **({"continuationToken": token} if token else {})}
        page = github.builds(query=query)
        seen += [x["taskGroupId"] for x in page["builds"]]
        token = page.get("continuationToken")
        if not token:
            break
    assert seen == [b, c, a]


@pytest.mark.parametrize(
    "query, status, code",
    [
        ({"repository": REPO}, 400, "InputError"),
        ({"organization": OWNER, "sha": sha("a")}, 400, "InputError"),
        ({"organization": OWNER, "pullRequest": "2"}, 400, "InputError"),
        ({"organization": OWNER, "repository": REPO, "pullRequest": "two"}, 400, "InvalidRequestArguments"),
        # beyond what storage holds (a 32-bit integer)
        ({"organization": OWNER, "repository": REPO, "pullRequest": "17940936621"}, 400, "InvalidRequestArguments"),
        ({"organization": "a.b"}, 400, "InvalidRequestArguments"),
        ({"continuationToken": "Z2FyYmFnZQ"}, 400, "InvalidRequestArguments"),
    ],
)
def test_bad_build_filters_are_refused(server, query, status, code):
    refused = failure(server.client("github").builds, query=query)
    assert (refused.status_code, refused.body["code"]) == (status, code)


def test_listing_builds_needs_its_scope(server):
    refused = failure(server.anonymous("github").builds)
    assert (refused.status_code, refused.body["code"]) == (403, "InsufficientScopes")
    assert "github:list-builds" in refused.body["message"]


def create_group(server: Any, scheduler_id: str = "taskcluster-github") -> tuple[str, str]:
    group, task_id = taskcluster.slugId(), taskcluster.slugId()
    server.client("queue").createTask(task_id, task_definition(taskGroupId=group, schedulerId=scheduler_id))
    return group, task_id


def test_cancel_builds_cancels_the_unfinished_task_groups_of_a_revision(server, runtime):
    github, queue = server.client("github"), server.client("queue")
    group1, task1 = create_group(server)
    group2, task2 = create_group(server)
    record_build(runtime, 0, group1)
    record_build(runtime, 1, group2, sha=sha("b"))
    done = record_build(runtime, 2, sha=sha("a"))
    set_state(runtime, done, "failure", 3)

    cancelled = github.cancelBuilds(OWNER, REPO, query={"sha": sha("a")})["builds"]
    assert [(x["taskGroupId"], x["state"]) for x in cancelled] == [(group1, "cancelled")]
    status = queue.status(task1)["status"]
    assert (status["state"], status["runs"][0]["reasonResolved"]) == ("exception", "canceled")
    assert queue.status(task2)["status"]["state"] == "pending"
    states = {x["taskGroupId"]: x["state"] for x in github.builds()["builds"]}
    assert states == {group1: "cancelled", group2: "pending", done: "failure"}
    assert [s["state"] for s in runtime.github.reads.build_states(group1)] == ["pending", "cancelled"]

    refused = failure(github.cancelBuilds, OWNER, REPO, query={"sha": sha("a")})
    assert (refused.status_code, refused.body["code"]) == (404, "ResourceNotFound")
    never_created = record_build(runtime, 4, sha=sha("b"))  # creating its tasks failed
    cancelled = github.cancelBuilds(OWNER, REPO)["builds"]
    assert [(x["taskGroupId"], x["state"]) for x in cancelled] == [(group2, "cancelled"), (never_created, "cancelled")]
    assert queue.status(task2)["status"]["state"] == "exception"


def test_cancel_builds_is_limited_to_taskcluster_github_groups_and_needs_its_scope(server, runtime):
    github = server.client("github")
    foreign, task_id = create_group(server, scheduler_id="someone-else")
    record_build(runtime, 0, foreign, pull_request_number=7)
    too_large = failure(github.cancelBuilds, OWNER, REPO, query={"pullRequest": "17940936621"})
    assert (too_large.status_code, too_large.body["code"]) == (400, "InvalidRequestArguments")
    refused = failure(github.cancelBuilds, OWNER, REPO, query={"pullRequest": "7"})
    assert (refused.status_code, refused.body["code"]) == (403, "InsufficientScopes")
    assert server.client("queue").status(task_id)["status"]["state"] == "pending"
    assert github.builds()["builds"][0]["state"] == "pending"

    other = client_with(server, "test/github-other", ["github:cancel-builds:other:repo"])
    refused = failure(other.cancelBuilds, OWNER, REPO)
    assert (refused.status_code, refused.body["code"]) == (403, "InsufficientScopes")
    assert f"github:cancel-builds:{OWNER}:{REPO}" in refused.body["message"]


def install(server: Any) -> None:
    assert deliver(server.root_url, "installation", example("installation.created.0")).status_code == 204


def test_the_badge_shows_the_state_of_the_latest_build_of_a_branch(server, runtime):
    github = server.client("github")

    def badge(branch: str = "master") -> tuple[str, str]:
        response = github.badge(OWNER, REPO, branch)["response"]
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("image/svg+xml")
        assert response.headers["cache-control"] == "no-cache, no-store, must-revalidate"
        assert response.text.startswith("<svg")
        return response.headers["x-taskcluster-status"], response.text

    assert badge()[0] == "nogithub"
    install(server)
    assert badge()[0] == "newrepo"
    old = record_build(runtime, 0)
    set_state(runtime, old, "failure", 1)
    assert badge() == ("failure", badge()[1])
    assert "failing" in badge()[1]
    new = record_build(runtime, 2)
    assert badge()[0] == "pending"
    set_state(runtime, new, "success", 3)
    state, svg = badge()
    assert state == "success" and "passing" in svg
    assert badge("other-branch")[0] == "newrepo"


def test_latest_redirects_to_the_task_group_of_the_latest_build_of_a_branch(server, runtime):
    github = server.client("github")
    refused = failure(github.latest, OWNER, REPO, "master")
    assert (refused.status_code, refused.body["code"]) == (404, "ResourceNotFound")
    record_build(runtime, 0)
    latest = record_build(runtime, 5)
    record_build(runtime, 9, branch="feature")
    response = github.latest(OWNER, REPO, "master")["response"]
    assert response.status_code == 302
    assert response.headers["location"] == f"{server.root_url}/tasks/groups/{latest}"


def test_badge_and_latest_need_their_scopes(server):
    github = server.anonymous("github")
    for call, scope in ((github.badge, "github:get-badge"), (github.latest, "github:latest-status")):
        refused = failure(call, OWNER, REPO, "master")
        assert refused.status_code == 403 and f"{scope}:{OWNER}:{REPO}:master" in refused.body["message"]


def test_create_status_and_comment_are_recorded_for_the_consumer_to_post(server, runtime):
    github = server.client("github")
    status = {"state": "success", "target_url": "https://example.com/run", "description": "all good"}
    for refused in (
        failure(github.createStatus, OWNER, REPO, sha("a"), status),
        failure(github.createComment, OWNER, REPO, "2", {"body": "hello"}),
    ):
        assert (refused.status_code, refused.body["code"]) == (404, "ResourceNotFound")
    assert runtime.github.reads.due_requests("9999-12-31T00:00:00.000Z", 10) == []

    install(server)
    assert github.createStatus(OWNER, REPO, sha("a"), status) == {}
    assert github.createComment(OWNER, REPO, "2", {"body": "hello **there**"}) == {}
    due = runtime.github.reads.due_requests("9999-12-31T00:00:00.000Z", 10)
    requests = {r.kind: r for r in map(runtime.github.service.request, due)}
    assert requests["status"].params == {**status, "context": "default"}
    assert (requests["status"].owner, requests["status"].repository, requests["status"].target) == (
        OWNER, REPO, sha("a"),
    )
    assert requests["status"].installation_id == 957387
    assert requests["status"].source == {"api": "static/root"}
    assert (requests["comment"].target, requests["comment"].params) == ("2", {"body": "hello **there**"})


def test_create_status_and_comment_check_their_input_and_scopes(server):
    install(server)
    github = server.client("github")
    refused = failure(github.createStatus, OWNER, REPO, sha("a"), {"state": "done"})
    assert (refused.status_code, refused.body["code"]) == (400, "InputValidationError")
    refused = failure(github.createComment, OWNER, REPO, "two", {"body": "x"})
    assert (refused.status_code, refused.body["code"]) == (400, "InvalidRequestArguments")

    limited = client_with(server, "test/github-status", [f"github:create-status:{OWNER}/{REPO}"])
    assert limited.createStatus(OWNER, REPO, sha("a"), {"state": "pending", "context": "ci"}) == {}
    refused = failure(limited.createComment, OWNER, REPO, "2", {"body": "x"})
    assert refused.status_code == 403 and f"github:create-comment:{OWNER}/{REPO}" in refused.body["message"]
    refused = failure(limited.createStatus, OWNER, "Other", sha("a"), {"state": "pending"})
    assert refused.status_code == 403


def test_repository_needs_its_scope(server):
    refused = failure(server.anonymous("github").repository, OWNER, REPO)
    assert refused.status_code == 403 and f"github:get-repository:{OWNER}:{REPO}" in refused.body["message"]


def test_names_with_dots_are_written_as_taskcluster_writes_them(server, runtime):
    github = server.client("github")
    group, _ = create_group(server)
    record_build(runtime, 0, group, organization="my.org", repository="site.github.io")
    (build,) = github.builds(query={"organization": "my%org", "repository": "site%github%io"})["builds"]
    assert (build["organization"], build["repository"]) == ("my%org", "site%github%io")
    assert github.badge("my.org", "site.github.io", "master")["response"].headers["x-taskcluster-status"] == "pending"
    response = github.latest("my.org", "site.github.io", "master")["response"]
    assert response.headers["location"].endswith(f"/tasks/groups/{group}")
    (cancelled,) = github.cancelBuilds("my.org", "site.github.io")["builds"]
    assert (cancelled["taskGroupId"], cancelled["state"]) == (group, "cancelled")
    assert runtime.github.service.build(group).repository == "site.github.io"  # GitHub's name, to post to
