"""The queue service, assembled from its parts in the order Taskcluster lists them."""

from __future__ import annotations

from cairn.api.endpoints import Service
from cairn.api.queue import artifacts, claims, groups, history, task_queues, tasks, worker_metadata

queue = Service(
    name="queue",
    title="Queue API",
    description=(
        "The queue keeps tasks, their runs and task groups, and hands pending work to "
        "workers. Every change is an event in Cairn's log; the pending queues and "
        "dependency waits are views kept in the same transaction as those events."
    ),
).include(
    tasks.endpoints,
    groups.endpoints,
    claims.endpoints,
    artifacts.endpoints,
    history.endpoints,
    task_queues.endpoints,
    worker_metadata.endpoints,
)
