"""After a downtime, a hook's missed schedule fires once, not once per missed tick (on both back ends)."""

from __future__ import annotations

import time

from cairn.domain.aggregate import acting_as
from cairn.domain.timestamps import utcnow
from tests.acceptance.hooks_helpers import QUEUE_SCOPES, hook_definition


def test_a_missed_schedule_fires_once_after_downtime(runtime):
    # The runtime's consumers are not started: Cairn is "down" while the ticks pass.
    part = runtime.hooks_and_secrets
    with acting_as("static/root"):
        runtime.auth.create_role("hook-id:ci/every-second", "", QUEUE_SCOPES)
        part.hooks.create("ci", "every-second", hook_definition(schedule=["* * * * * *"]), utcnow())
    time.sleep(3.2)  # three ticks missed

    assert part.scheduler.fire_due() == 1
    [fire] = part.hook_reads.fires("ci", "every-second", 0, 10)
    assert (fire["fired_by"], fire["result"]) == ("schedule", "success")
    # The schedule moved on past the time of the fire, over the ticks it missed.
    next_date = part.hook_reads.hook("ci", "every-second")["next_scheduled_date"]
    assert next_date >= fire["task_create_time"][:19] + ".000Z"
    assert runtime.log.get(f"task/{fire['task_id']}") is not None
