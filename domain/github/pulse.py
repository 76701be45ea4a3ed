"""The Pulse messages of the github service, derived from its events.

- a recorded delivery (``GithubDelivery.Received``) is announced on ``push``,
  ``pull-request``, ``release`` or ``rerun`` as Taskcluster's webhook
  endpoint announces it (``webhook_events.classify``); a delivery that came
  through no installation is announced on none, since every one of those
  messages names its installation;
- a build whose tasks were created (``GithubBuild.TasksCreated``) is announced
  on ``task-group-creation-requested``, CC'd to the routes of its first task.

Routing keys are Taskcluster's: ``primary.<organization>.<repository>``, with
``.<action>`` on pull-request.
"""

from __future__ import annotations

import re
from typing import Any

from cairn.domain.github.model import GithubBuild, GithubDelivery
from cairn.domain.github.webhook_events import PULL_REQUEST, RERUN, classify, sanitize_github_field

GITHUB_EXCHANGES = "exchange/taskcluster-github/v1/"
MESSAGE_VERSION = 1

GITHUB_EXCHANGE_SCHEMAS: dict[str, str] = {
    GITHUB_EXCHANGES + name: f"/schemas/github/v1/{schema}.json"
    for name, schema in (
        ("push", "github-push-message"),
        ("pull-request", "github-pull-request-message"),
        ("release", "github-release-message"),
        ("rerun", "github-rerun-message"),
        ("task-group-creation-requested", "task-group-creation-requested"),
    )
}

_IDENTIFIER = re.compile(r"[a-zA-Z0-9\-_%]{1,100}")

Draft = tuple[str, str, list[str], dict[str, Any]]


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _delivery_received(event: Any, delivery: GithubDelivery) -> list[Draft]:
    found = classify(delivery.event_name, delivery.body)
    if found.exchange is None or delivery.installation_id is None:
        return []
    if not (_IDENTIFIER.fullmatch(found.organization) and _IDENTIFIER.fullmatch(found.repository)):
        return []
    body: dict[str, Any] = {
        "version": MESSAGE_VERSION,
        "organization": found.organization,
        "repository": found.repository,
        "installationId": delivery.installation_id,
        "eventId": delivery.delivery_id,
        "details": found.details,
        "body": delivery.body,
        "tasks_for": found.tasks_for,
    }
    key = f"primary.{found.organization}.{found.repository}"
    if found.exchange == RERUN:
        if not (_int(found.check_run_id) and _int(found.check_suite_id)):
            return []
        body.update(checkRunId=found.check_run_id, checkSuiteId=found.check_suite_id)
    else:
        if not isinstance(found.branch, str):
            return []
        body["branch"] = found.branch
    if found.exchange == PULL_REQUEST:
        if not found.action or "." in found.action:
            return []
        body["action"] = found.action
        key += f".{found.action}"
    return [(GITHUB_EXCHANGES + found.exchange, key, [], body)]


def _tasks_created(event: Any, build: GithubBuild) -> list[Draft]:
    organization = sanitize_github_field(build.organization)
    repository = sanitize_github_field(build.repository)
    body = {
        "version": MESSAGE_VERSION,
        "organization": organization,
        "repository": repository,
        "taskGroupId": build.task_group_id,
    }
    cc = [f"route.{route}" for route in build.routes or []]
    return [(GITHUB_EXCHANGES + "task-group-creation-requested", f"primary.{organization}.{repository}", cc, body)]


GITHUB_BUILDERS: dict[type, Any] = {
    GithubDelivery.Received: _delivery_received,
    GithubBuild.TasksCreated: _tasks_created,
    # Handled, the other build events, installations and requests: Taskcluster publishes nothing.
}
