"""The github service's Pulse messages, derived from recorded events as a replay of the log derives them.

Real webhook payloads are recorded as deliveries; each message must have the
routing key Taskcluster declares for its exchange and match its schema.
"""

from __future__ import annotations

import copy
import json
import uuid
from datetime import datetime, timezone
from typing import Any

import pytest

from cairn.api.schemas import load_schemas
from cairn.domain.aggregate import acting_as
from cairn.domain.github.model import GithubBuild, GithubDelivery
from cairn.domain.github.webhook_events import classify, sanitize_github_field
from cairn.domain.pulse_messages import PulseMessage, messages_for
from tests.conftest import reference_dir

G = "exchange/taskcluster-github/v1/"
NOW = "2026-11-01T10:00:00.000Z"


@pytest.fixture(autouse=True)
def actor():
    with acting_as("github-webhook"):
        yield


def example(name: str) -> dict[str, Any]:
    path = reference_dir("github/webhooks") / "github" / "webhooks" / f"{name}.json"
    return json.loads(path.read_text())


_states: dict[str, Any] = {}


def derived(*aggregates: Any) -> list[PulseMessage]:
    """The messages of the events the aggregates recorded since last asked, each folded on the state
    before it, as a replay of the log does."""
    messages: list[PulseMessage] = []
    for aggregate in aggregates:
        for event in aggregate.collect_events():
            state = event.mutate(_states.get(event.originator_id))
            _states[event.originator_id] = state
            messages.extend(messages_for(event, state))
    return messages


def delivered(event_name: str, body: dict[str, Any], delivery_id: str | None = None) -> list[PulseMessage]:
    installation = body.get("installation") or {}
    delivery = GithubDelivery(
        delivery_id=delivery_id or str(uuid.uuid4()), event_name=event_name,
        installation_id=installation.get("id"), body=body, received=NOW,
    )
    return derived(delivery)


def assert_declared(message: PulseMessage) -> None:
    """The routing key has the words Taskcluster declares for the exchange; the body its schema."""
    declared = json.loads((reference_dir("exchanges.json") / "exchanges.json").read_text())
    layout = next(e for e in declared["github"]["exchanges"] if e["fullExchange"] == message.exchange)["routingKey"]
    words = message.routing_key.split(".")
    assert len(words) == len(layout), message.routing_key
    assert words[0] == "primary" and all(words)
    errors = load_schemas().errors(message.schema, message.body)
    assert errors is None, f"{message.exchange}: {errors}"


def test_a_push_is_announced_on_push_with_its_organization_and_repository():
    delivery = str(uuid.uuid4())
    body = example("push.none.4")
    (message,) = delivered("push", body, delivery)
    assert (message.exchange, message.routing_key, message.cc) == (G + "push", "primary.Codertocat.Hello-World", [])
    assert message.body["eventId"] == delivery and message.body["installationId"] == 1
    assert message.body["tasks_for"] == "github-push" and message.body["branch"] == "master"
    assert message.body["body"] == body
    details = message.body["details"]
    assert details["event.type"] == "push" and details["event.head.sha"] == body["after"]
    assert details["event.head.repo.branch"] == "master"
    assert details["event.head.user.email"] == "Codertocat@users.noreply.github.com"
    assert_declared(message)


@pytest.mark.parametrize("name", ["pull_request.opened.1", "pull_request.synchronize.0", "pull_request.closed.0",
                                  "pull_request.labeled.0", "pull_request.reopened.0"])
def test_every_pull_request_action_is_announced_with_the_action_in_the_routing_key(name):
    body = example(name)
    (message,) = delivered("pull_request", body)
    action = body["action"]
    assert message.exchange == G + "pull-request"
    assert message.routing_key == f"primary.Codertocat.Hello-World.{action}"
    assert message.body["action"] == action and message.body["branch"] == body["pull_request"]["head"]["ref"]
    assert message.body["details"]["event.type"] == f"pull_request.{action}"
    assert message.body["details"]["event.pullNumber"] == 2
    assert_declared(message)


def test_a_release_and_a_rerun_request_are_announced():
    release = example("release.published.0")
    release["installation"] = {"id": 5}
    (message,) = delivered("release", release)
    assert (message.exchange, message.body["branch"]) == (G + "release", "master")
    assert message.body["details"]["event.version"] == "0.0.1"
    assert_declared(message)

    (rerun,) = delivered("check_run", example("check_run.rerequested.0"))
    assert rerun.exchange == G + "rerun" and rerun.routing_key == "primary.github.hello-world"
    assert (rerun.body["checkRunId"], rerun.body["tasks_for"]) == (4, "github-push")
    assert_declared(rerun)


def test_a_taskcluster_comment_on_an_open_pull_request_is_announced_on_pull_request():
    body = copy.deepcopy(example("issue_comment.created.0"))
    body["installation"] = {"id": 1}
    assert delivered("issue_comment", body) == []  # no /taskcluster command, nor a pull request
    body["issue"]["pull_request"] = {"url": "https://api.github.com/repos/Codertocat/Hello-World/pulls/1"}
    body["issue"]["state"] = "open"
    body["comment"]["body"] = "Looks good.\n/taskcluster run the tests\n"
    (message,) = delivered("issue_comment", body)
    assert message.routing_key == "primary.Codertocat.Hello-World.created"
    assert message.body["tasks_for"] == "github-issue-comment" and message.body["branch"] == "unknown"
    assert message.body["details"]["taskcluster_comment"] == "run the tests"
    assert_declared(message)


def test_deliveries_taskcluster_does_not_announce_give_no_message():
    assert delivered("ping", example("ping.none.0")) == []
    assert delivered("installation", example("installation.created.0")) == []
    assert delivered("check_suite", example("check_suite.requested.0")) == []
    assert delivered("push", example("push.none.0")) == []  # no installation: nothing to name
    skipped = example("push.none.4")
    skipped["head_commit"] = {"message": "Fix typo [ci skip]"}
    assert delivered("push", skipped) == []
    assert classify("push", skipped).skip_reason
    titled = example("pull_request.opened.1")
    titled["pull_request"]["title"] = "WIP [Skip CI]"
    assert delivered("pull_request", titled) == []
    bot = example("check_run.rerequested.0")
    bot["sender"]["type"] = "Bot"
    assert delivered("check_run", bot) == []


def test_names_are_sanitized_as_taskcluster_does():
    assert sanitize_github_field("my.org") == "my%org"
    assert sanitize_github_field("we!rd name_1-x") == "werdname_1-x"
    assert sanitize_github_field("my%org") == "my%org"  # written the same again
    body = example("push.none.4")
    body["repository"]["name"] = "site.github.io"
    (message,) = delivered("push", body)
    assert message.routing_key == "primary.Codertocat.site%github%io"
    assert_declared(message)


def test_created_tasks_are_announced_on_task_group_creation_requested_with_their_routes():
    build = GithubBuild(
        task_group_id="f3d5IXbJQ6ysAcbK8dI8lQ", organization="Codertocat", repository="site.io", sha="a" * 40,
        event_type="push", event_id=str(uuid.uuid4()), installation_id=1, pull_request_number=None,
        branch="master", tasks_for="github-push", reporting=None,
        created=datetime(2026, 11, 1, tzinfo=timezone.utc).isoformat(),
    )
    assert derived(build) == []
    build.tasks_created(["a", "b"], ["statuses", "index.project.x"])
    build.tasks_created(["a", "b"], ["statuses"])  # already recorded: no second event
    (message,) = derived(build)
    assert message.exchange == G + "task-group-creation-requested"
    assert message.routing_key == "primary.Codertocat.site%io"
    assert message.cc == ["route.statuses", "route.index.project.x"]
    assert message.body == {
        "version": 1, "organization": "Codertocat", "repository": "site%io", "taskGroupId": "f3d5IXbJQ6ysAcbK8dI8lQ",
    }
    assert_declared(message)
