"""A group whose last tasks resolve at the same moment resolves exactly once (SQLite and PostgreSQL).

The resolution reads the group's row under its lock and then the group's
progress, sent together in one flight on PostgreSQL: the progress must
still be read after the lock is held, seeing what the lock's previous
holder committed (``QueueReads.after_resolution``).
"""

from __future__ import annotations

import functools

from cairn.domain.aggregate import acting_as
from cairn.domain.queue.task_group import task_group_key
from cairn.domain.timestamps import utcnow
from tests.domain.queue.stories import QUEUE, body
from tests.threads import at_once

TASKS = 8
ROUNDS = 6


def test_the_last_tasks_of_a_group_resolving_at_once_resolve_it_exactly_once(runtime):
    queue = runtime.queue
    now = utcnow()
    for round_ in range(ROUNDS):
        group = f"race{round_:02d}" + "A" * 16
        task_ids = [f"r{round_:02d}t{n:02d}" + "B" * 16 for n in range(TASKS)]
        for task_id in task_ids:
            queue.define_task(task_id, body(now, taskGroupId=group), now)
        claimed = queue.claim_work(QUEUE, "group", "racer", TASKS, now)
        assert sorted(c.task.task_id for c in claimed) == sorted(task_ids)

        def resolve(task_id: str) -> None:
            with acting_as("tests/racer"):
                queue.report(task_id, 0, "completed", "completed", utcnow())

        errors = at_once(*(functools.partial(resolve, t) for t in task_ids))
        assert not errors, errors[0]
        resolved = [e for e in runtime.log.events.get(task_group_key(group)) if type(e).__name__ == "Resolved"]
        assert len(resolved) == 1, f"round {round_}: the group resolved {len(resolved)} times"
