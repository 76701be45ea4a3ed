"""createTask's one normalisation, and the scope parameters computed from it."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cairn.domain.auth.scope_templates import ScopeTemplate
from cairn.domain.errors import InvalidInput
from cairn.domain.queue import scope_requirements
from cairn.domain.queue.definition import normalise_definition, with_defaults
from cairn.domain.queue.task_queue_id import TaskQueueId
from tests.domain.queue.stories import NOW, QUEUE, body


def test_a_task_queue_id_splits_at_its_first_slash_and_joins_back():
    queue = TaskQueueId.parse("proj-a/builder")
    assert (queue.provisioner_id, queue.worker_type, str(queue)) == ("proj-a", "builder", "proj-a/builder")
    assert list(queue.fields().items()) == [
        ("provisionerId", "proj-a"), ("workerType", "builder"), ("taskQueueId", "proj-a/builder"),
    ]
    assert queue.halves() == {"provisionerId": "proj-a", "workerType": "builder"}


def test_defaults_are_filled_in_and_normal_priority_is_lowest():
    d = normalise_definition("t1", body(priority="normal"), NOW)
    assert d["taskGroupId"] == "t1"
    assert (d["schedulerId"], d["projectId"], d["requires"], d["retries"]) == ("-", "none", "all-completed", 5)
    assert d["priority"] == "lowest"
    assert d["expires"] == "2031-06-01T13:00:00.000Z"  # a year after the deadline
    assert with_defaults("t1", body(priority="normal"))["priority"] == "lowest"


def test_the_queue_may_be_named_by_its_halves_or_its_id_but_they_must_agree():
    halves = {k: v for k, v in body(provisionerId="stories", workerType="worker").items() if k != "taskQueueId"}
    d = normalise_definition("t1", halves, NOW)
    assert d["taskQueueId"] == QUEUE and "provisionerId" not in d and "workerType" not in d
    assert normalise_definition("t1", body(provisionerId="stories", workerType="worker"), NOW)["taskQueueId"] == QUEUE
    with pytest.raises(InvalidInput, match='taskQueueId must match "provisionerId/workerType"'):
        normalise_definition("t1", body(provisionerId="other", workerType="worker"), NOW)
    with pytest.raises(InvalidInput, match="at least a provisionerId and a workerType or a taskQueueId"):
        normalise_definition("t1", {k: v for k, v in body().items() if k != "taskQueueId"}, NOW)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"created": NOW - timedelta(minutes=16)}, "`created` cannot be in the past (max 15min drift)"),
        ({"deadline": NOW + timedelta(days=6)}, "`deadline` cannot be more than 5 days into the future"),
        ({"expires": NOW}, "`expires` cannot be before `deadline`"),
        ({"scopes": ["queue:**"]}, "scopes must not end with `**`"),
    ],
)
def test_limits_are_checked(overrides, message):
    from cairn.domain.timestamps import iso

    given = {k: iso(v) if hasattr(v, "tzinfo") else v for k, v in overrides.items()}
    with pytest.raises(InvalidInput) as refused:
        normalise_definition("t1", body(**given), NOW)
    assert refused.value.message == message


def test_create_task_needs_a_priority_at_least_as_high_on_the_queue_of_the_body():
    params = scope_requirements.create_task("t1", body(priority="high", projectId="", routes=["a.b"], scopes=["s"]))
    assert params["priorities"] == ["highest", "very-high", "high"]
    assert (params["projectId"], params["schedulerId"], params["taskGroupId"]) == ("none", "-", "t1")
    assert (params["provisionerId"], params["workerType"]) == ("stories", "worker")
    template = ScopeTemplate(
        {"AnyOf": [{"for": "priority", "in": "priorities", "each": "queue:create-task:<priority>:<provisionerId>/<workerType>"}]}
    )
    assert template.render(params) == {
        "AnyOf": [
            "queue:create-task:highest:stories/worker",
            "queue:create-task:very-high:stories/worker",
            "queue:create-task:high:stories/worker",
        ]
    }
    # The halves, when the body gives both, name the queue the scopes are asked for.
    both = scope_requirements.create_task("t1", body(provisionerId="p", workerType="w"))
    assert (both["provisionerId"], both["workerType"]) == ("p", "w")


def test_the_scope_parameters_of_the_other_queue_endpoints():
    assert scope_requirements.task_ids({}) == {"taskIds": []}
    assert scope_requirements.declare_worker({"expires": "x", "b": 1}) == {"properties": ["b", "expires"]}
    assert scope_requirements.task_group_command("g", "s") == {"taskGroupId": "g", "schedulerId": "s"}
    assert scope_requirements.task_queue_counts_batch(["a/b"]) == {
        "AllOf": ["queue:pending-count:a/b", "queue:claimed-count:a/b"]
    }
