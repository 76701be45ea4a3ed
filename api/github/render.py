"""renderTaskclusterYml: what a ``.taskcluster.yml`` would create for an event, creating nothing.

The event is made up (``fake_events``) for the type, action, organization,
repository and overrides asked for, and read and rendered exactly as a
delivery is (``domain/github/tcyml``): version 1 (JSON-e), the trigger
format, and ``config-from`` (the referenced file fetched from GitHub). A
release is rendered at the made-up head revision, a comment with its made-up
pull request. A file that cannot be rendered is ``InputError`` with the
error the author would see in a comment on GitHub.
"""

from __future__ import annotations

from typing import Any

from cairn.api.call import Call
from cairn.api.endpoints import Endpoints
from cairn.api.errors import InputError
from cairn.api.github.context import GithubContext
from cairn.api.github.fake_events import HEAD_SHA, fake_event, fake_pull_request
from cairn.domain.github import tcyml
from cairn.domain.timestamps import utcnow

endpoints = Endpoints()

UNTRUSTED = "github-pull-request-untrusted"


@endpoints.endpoint(
    "renderTaskclusterYml", "POST", "/taskcluster-yml", title="Render .taskcluster.yml file",
    category="Github Service", input="render-taskcluster-yml-input", output="render-taskcluster-yml-output",
    stability="experimental",
)
def render_taskcluster_yml(call: Call[GithubContext]) -> dict[str, Any]:
    """Render a ``.taskcluster.yml`` for a made-up event of the given type and action: the tasks it
    would create and the scopes they would be created with. Nothing is created."""
    request = call.body
    organization = request.get("organization", "taskcluster")
    repository = request.get("repository", "testing")
    fake = request["fakeEvent"]
    overrides = fake.get("overrides") or {}
    branch = overrides.get("branch") if isinstance(overrides.get("branch"), str) else "main"
    event_name, body = fake_event(fake["type"], fake.get("action"), organization, repository, branch, overrides)
    try:
        event = tcyml.interpret(event_name, body)
    except ValueError as e:
        raise InputError(f"The event, with its overrides, is not a valid {event_name} delivery: {e}") from None
    if event is None or event.tasks_for is None:
        reason = event.no_build_reason if event is not None else f"{event_name} events build nothing"
        raise InputError(f"This event renders no tasks: {reason}")
    if event.sha is None and event.event_name == "release":
        event = event.with_sha(HEAD_SHA)
    elif event.sha is None and event.event_name == "issue_comment":
        event = event.with_pull_request(fake_pull_request(organization, repository, branch))
    try:
        rendered = tcyml.render(
            request["body"], event, root_url=call.context.root_url, now=utcnow(),
            fetch_file=call.context.fetch_file, untrusted=fake["type"] == UNTRUSTED,
        )
    except (tcyml.ConfigError, ValueError) as e:
        raise InputError(str(e)) from None
    return {
        "tasks": [{"taskId": task_id, "task": task} for task_id, task in rendered.tasks],
        "scopes": list(dict.fromkeys(rendered.scopes)),
    }
