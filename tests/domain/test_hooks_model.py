"""Hooks without I/O: schedules, due times after downtime, rendering, payload checks and messages."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from cairn.domain.aggregate import acting_as
from cairn.domain.errors import InvalidInput
from cairn.domain.hooks.firing import derived_task_id, payload_problems, render_task
from cairn.domain.hooks.model import Hook
from cairn.domain.hooks.schedule import check_schedule, next_due
from cairn.domain.hooks.service import normalise_definition
from cairn.domain.pulse_messages import messages_for
from cairn.domain.timestamps import iso
from tests.domain.test_pulse_messages import assert_valid

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=timezone.utc)


@pytest.fixture(autouse=True)
def actor():
    with acting_as("static/root"):
        yield


def new_hook(schedule: list[str], now: datetime = T0) -> Hook:
    definition = normalise_definition({"metadata": {"name": "n", "description": "d", "owner": "o@example.com"},
                                       "task": {}, "schedule": schedule})
    found = next_due(schedule, now)
    return Hook(hook_group_id="g", hook_id="h/1", definition=definition, sealed_token="sealed",
                next_scheduled_date=iso(found) if found else None)


def test_schedules_are_six_fields_seconds_first_in_utc():
    assert next_due(["*/15 * * * * *"], T0) == T0 + timedelta(seconds=15)
    assert next_due(["0 30 * * * *", "10 0 12 * * *"], T0) == T0 + timedelta(seconds=10)
    assert next_due([], T0) is None
    with pytest.raises(InvalidInput):
        check_schedule(["every minute"])


def test_a_due_time_fires_once_and_after_downtime_the_next_is_after_now():
    hook = new_hook(["0 * * * * *"])  # every minute, on the minute
    assert hook.due(T0) is None
    first = iso(T0 + timedelta(minutes=1))
    assert hook.due(T0 + timedelta(minutes=1)) == first
    # Down for an hour: one fire for the missed time, then the next one after now.
    late = T0 + timedelta(hours=1, seconds=5)
    assert hook.due(late) == first
    hook.record_fire("schedule", "t", "success", "", late, scheduled_for=first)
    assert hook.next_scheduled_date == iso(T0 + timedelta(hours=1, minutes=1))
    assert hook.due(late) is None


def test_a_hook_remembers_the_messages_it_fired_for():
    hook = new_hook([])
    hook.record_fire("pulseMessage", "t", "success", "", T0, source="m-1")
    assert hook.has_fired_for("m-1") and not hook.has_fired_for("m-2")
    assert hook.next_scheduled_date is None


def test_rendering_uses_taskcluster_s_context_and_defaults():
    template = {"payload": {"v": "${payload.x}", "by": "${firedBy}"}, "deadline": {"$fromNow": "2 hours"}}
    task = render_task(template, {"firedBy": "triggerHook", "payload": {"x": "y"}}, "TASK", T0)
    assert task == {
        "payload": {"v": "y", "by": "triggerHook"},
        "deadline": iso(T0 + timedelta(hours=2)),
        "created": iso(T0),
        "expires": iso(T0 + timedelta(days=30)),
        "taskGroupId": "TASK",
    }
    assert render_task({"$if": "payload.go", "then": {}}, {"payload": {"go": False}}, "TASK", T0) is None


def test_payloads_are_checked_against_the_trigger_schema():
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "additionalProperties": False}
    assert payload_problems(schema, {"n": 1}) is None
    assert "n" in payload_problems(schema, {"n": "one"})
    assert payload_problems(normalise_definition({"metadata": {}, "task": {}})["triggerSchema"], {"a": 1})


def test_derived_task_ids_are_stable_slug_ids():
    first = derived_task_id("hook/g/h", "2026-01-01T00:00:00.000Z")
    assert first == derived_task_id("hook/g/h", "2026-01-01T00:00:00.000Z")
    assert first != derived_task_id("hook/g/h", "2026-01-01T00:00:01.000Z")
    assert len(first) == 22 and first[8] in "QRST"


def test_hook_changes_are_announced_without_the_token():
    hook = new_hook([])
    hook.change(hook.definition, None)
    hook.reset_trigger_token("sealed-2")
    hook.record_fire("triggerHook", "t", "success", "", T0)
    hook.remove()
    state = None
    announced = []
    for event in hook.collect_events():
        state = event.mutate(state)
        announced.extend(messages_for(event, state))
    assert [m.exchange.rsplit("/", 1)[1] for m in announced] == ["hook-created", "hook-updated", "hook-deleted"]
    for message in announced:
        assert message.body == {"hookGroupId": "g", "hookId": "h/1"} and message.routing_key == "_"
        assert_valid(message)
