"""The patterns the queue's route parameters must match, as Taskcluster's."""

from __future__ import annotations

SLUGID = r"[A-Za-z0-9_-]{8}[Q-T][A-Za-z0-9_-][CGKOSWaeimquy26-][A-Za-z0-9_-]{10}[AQgw]"
GENERIC_ID = r"[a-zA-Z0-9-_]{1,38}"
# Declaring a worker makes its task queue known, so the queue's id must be a
# valid taskQueueId: a workerType is held to the second half of that pattern.
TASK_QUEUE_WORKER_TYPE = r"[a-z]([-a-z0-9]{0,36}[a-z0-9])?"
TASK_QUEUE_ID = GENERIC_ID + "/" + TASK_QUEUE_WORKER_TYPE
RUN_ID = r"[0-9]{1,3}"

TASK_PARAMS = {"taskId": SLUGID}
RUN_PARAMS = {"taskId": SLUGID, "runId": RUN_ID}
GROUP_PARAMS = {"taskGroupId": SLUGID}
QUEUE_PARAMS = {"taskQueueId": TASK_QUEUE_ID}
PAGED = ("continuationToken", "limit")
