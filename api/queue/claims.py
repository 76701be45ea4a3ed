"""The queue's worker interface: claim work, keep a claim, and report how the run went.

claimWork answers at once when work is pending; otherwise it waits (up to
20 seconds) on the event loop, without holding a thread, for a notification
that work arrived on its task queue — see ``_wait_for_work``.
"""

from __future__ import annotations

import time
from typing import Any

from cairn.api.call import Call
from cairn.api.endpoints import Endpoints
from cairn.api.queue.context import QueueContext
from cairn.api.queue.route_params import QUEUE_PARAMS, RUN_PARAMS
from cairn.api.request_threads import in_request_thread
from cairn.domain.queue import scope_requirements
from cairn.domain.queue.run_credentials import run_credentials
from cairn.domain.queue.task import Task
from cairn.domain.timestamps import utcnow

CLAIM_WAIT_SECONDS = 20.0
MAX_CLAIMS = 32

endpoints = Endpoints()
QueueCall = Call[QueueContext]


def _claim_body(call: QueueCall, task: Task, run_id: int) -> dict[str, Any]:
    run = task.run(run_id)
    return {
        "status": task.status(),
        "runId": run_id,
        "workerGroup": run["workerGroup"],
        "workerId": run["workerId"],
        "takenUntil": run["takenUntil"],
        "task": task.public_definition(),
        "credentials": run_credentials(call.context.credentials, task, run_id, utcnow()),
    }


@endpoints.endpoint(
    "claimWork",
    "POST",
    "/claim-work/<taskQueueId>",
    title="Claim Work",
    category="Worker Interface",
    scopes={"AllOf": ["queue:claim-work:<taskQueueId>", "queue:worker-id:<workerGroup>/<workerId>"]},
    input="claim-work-request",
    output="claim-work-response",
    greedy=("taskQueueId",),
    params=QUEUE_PARAMS,
    nonce_in_command=True,
    short=True,
)
def claim_work(call: QueueCall) -> Any:
    """Claim up to ``tasks`` pending runs; waits up to 20 seconds for work to arrive."""
    give_up = time.monotonic() + CLAIM_WAIT_SECONDS
    # Read before claiming: work that arrives after the claim found none moves it.
    seen = call.context.wake.generation(call.params["taskQueueId"])
    tasks = _claim_bodies(call)
    if tasks:
        return {"tasks": tasks}
    return _wait_for_work(call, seen, give_up)


async def _wait_for_work(call: QueueCall, seen: int, give_up: float) -> dict[str, Any]:
    """claimWork's long poll, on the event loop: no thread is held while it waits."""
    queue_id = call.params["taskQueueId"]
    wake = call.context.wake
    while True:
        # Look again only when work arrives on this queue (or, should a
        # notification be lost, after a fallback interval); meanwhile notice
        # within a second a worker that hung up, which must not be handed
        # work it will never run.
        recheck = time.monotonic() + call.context.recheck
        while wake.generation(queue_id) == seen and time.monotonic() < recheck:
            remaining = give_up - time.monotonic()
            if remaining <= 0 or await call.request.is_disconnected():
                return {"tasks": []}
            await wake.wait(queue_id, seen, min(remaining, 1.0))
        if time.monotonic() >= give_up or await call.request.is_disconnected():
            return {"tasks": []}
        seen = wake.generation(queue_id)
        tasks = await in_request_thread(call.request, _claim_bodies, call)
        if tasks:
            return {"tasks": tasks}


def _claim_bodies(call: QueueCall) -> list[dict[str, Any]]:
    """Claim up to ``tasks`` pending runs now; what claimWork answers for each."""
    body = call.body
    count = min(int(body.get("tasks", 1)), MAX_CLAIMS)
    claims = call.context.service.claim_work(
        call.params["taskQueueId"], body["workerGroup"], body["workerId"], count, utcnow()
    )
    return [_claim_body(call, c.task, c.run_id) for c in claims]


@endpoints.endpoint(
    "claimTask",
    "POST",
    "/task/<taskId>/runs/<runId>/claim",
    title="Claim Task",
    category="Worker Interface",
    stability="deprecated",
    scopes={
        "AllOf": [
            "queue:claim-task:<provisionerId>/<workerType>",
            "queue:worker-id:<workerGroup>/<workerId>",
        ]
    },
    input="task-claim-request",
    output="task-claim-response",
    params=RUN_PARAMS,
    deferred_auth=True,
)
def claim_task(call: QueueCall) -> dict[str, Any]:
    """Claim one pending run by id (deprecated in favour of claimWork)."""
    service = call.context.service
    task = service.task(call.params["taskId"])
    call.authorize(**scope_requirements.claim_task(task))
    claim = service.claim_task(
        task.task_id, int(call.params["runId"]), call.body["workerGroup"], call.body["workerId"], utcnow()
    )
    return _claim_body(call, claim.task, claim.run_id)


@endpoints.endpoint(
    "reclaimTask",
    "POST",
    "/task/<taskId>/runs/<runId>/reclaim",
    title="Reclaim task",
    category="Worker Interface",
    scopes="queue:reclaim-task:<taskId>/<runId>",
    output="task-reclaim-response",
    params=RUN_PARAMS,
    nonce_in_command=True,
    short=True,
)
def reclaim_task(call: QueueCall) -> dict[str, Any]:
    """Extend a claim; a run that was cancelled or claimed away answers 409."""
    run_id = int(call.params["runId"])
    task = call.context.service.reclaim(call.params["taskId"], run_id, utcnow())
    body = _claim_body(call, task, run_id)
    body.pop("task")
    return body


def _report(call: QueueCall, state: str, reason: str) -> dict[str, Any]:
    task = call.context.service.report(call.params["taskId"], int(call.params["runId"]), state, reason, utcnow())
    return {"status": task.status()}


@endpoints.endpoint(
    "reportCompleted",
    "POST",
    "/task/<taskId>/runs/<runId>/completed",
    title="Report Run Completed",
    category="Worker Interface",
    scopes="queue:resolve-task:<taskId>/<runId>",
    output="task-status-response",
    params=RUN_PARAMS,
    nonce_in_command=True,
    short=True,
)
def report_completed(call: QueueCall) -> dict[str, Any]:
    """Resolve a running run as completed; repeating it is harmless."""
    return _report(call, "completed", "completed")


@endpoints.endpoint(
    "reportFailed",
    "POST",
    "/task/<taskId>/runs/<runId>/failed",
    title="Report Run Failed",
    category="Worker Interface",
    scopes="queue:resolve-task:<taskId>/<runId>",
    output="task-status-response",
    params=RUN_PARAMS,
    nonce_in_command=True,
    short=True,
)
def report_failed(call: QueueCall) -> dict[str, Any]:
    """Resolve a running run as failed (the task ran and did not succeed)."""
    return _report(call, "failed", "failed")


@endpoints.endpoint(
    "reportException",
    "POST",
    "/task/<taskId>/runs/<runId>/exception",
    title="Report Task Exception",
    category="Worker Interface",
    scopes="queue:resolve-task:<taskId>/<runId>",
    input="task-exception-request",
    output="task-status-response",
    params=RUN_PARAMS,
    nonce_in_command=True,
    short=True,
)
def report_exception(call: QueueCall) -> dict[str, Any]:
    """Resolve a running run as exception; some reasons retry the task."""
    return _report(call, "exception", call.body["reason"])
