"""The built-in workers: task queues ``built-in/succeed`` and ``built-in/fail``, worked by Cairn itself.

As Taskcluster's built-in-workers service: a task on ``built-in/succeed``
completes, one on ``built-in/fail`` fails, as soon as it is pending — the
``true`` and ``false`` of task graphs, for tasks that stand in for others.
The payload must be empty (``{}``); any other payload resolves the run as
exception ``malformed-payload``. Runs are claimed by worker group
``built-in`` with the worker id ``succeed`` or ``fail``, as Taskcluster's.
"""

from __future__ import annotations

from typing import Any

WORKER_GROUP = "built-in"
#: task queue -> (workerId, the state an empty payload resolves to)
QUEUES = {
    "built-in/succeed": ("succeed", "completed"),
    "built-in/fail": ("fail", "failed"),
}


def outcome(task_queue_id: str, payload: Any) -> tuple[str, str]:
    """(state, reason) of a built-in worker's run of a task with ``payload``."""
    if payload != {}:
        return "exception", "malformed-payload"
    state = QUEUES[task_queue_id][1]
    return state, state
