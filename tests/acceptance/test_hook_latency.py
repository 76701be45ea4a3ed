"""How late hooks fire: from a schedule's due second to its task's definition, and from a message to its fire.

Long cases (``--run-slow``): 50 scheduled fires (a schedule of every second)
and 50 bound fires, on each back end. Delays are measured between the
timestamps of events in the log: the ``task-defined`` message is derived
from the task's Defined event, and a fire is its hook's Fired event.
"""

from __future__ import annotations

import statistics
import time

import pytest
import taskcluster

from cairn.domain.timestamps import parse_time
from tests.acceptance.hooks_helpers import QUEUE_SCOPES, hook_definition, hook_task, role_for_hook
from tests.acceptance.queue_helpers import TASK_QUEUE

FIRES = 50


def percentiles(delays: list[float]) -> str:
    ordered = sorted(delays)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return f"p50 {statistics.median(ordered) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, max {ordered[-1] * 1000:.0f} ms"


def events_of(runtime, originator_id: str) -> list:
    return [runtime.log.mapper.to_domain_event(e) for e in runtime.log.recorder.select_events(originator_id)]


@pytest.mark.slow
def test_scheduled_fires_define_their_task_soon_after_the_due_second(server, database_url):
    role_for_hook(server, "bench", "every-second", QUEUE_SCOPES)
    hooks = server.client("hooks")
    hooks.createHook("bench", "every-second", hook_definition(schedule=["* * * * * *"]))
    runtime = server.runtime
    give_up = time.monotonic() + FIRES * 3
    while time.monotonic() < give_up:
        fired = [e for e in events_of(runtime, "hook/bench/every-second") if type(e).__name__ == "Fired"]
        if len(fired) >= FIRES:
            break
        time.sleep(0.5)
    hooks.removeHook("bench", "every-second")
    fired = fired[:FIRES]
    assert len(fired) == FIRES and all(e.result == "success" for e in fired)
    assert len({e.scheduled_for for e in fired}) == FIRES
    delays = []
    for e in fired:
        defined = events_of(runtime, f"task/{e.task_id}")[0]
        delays.append((defined.timestamp - parse_time(e.scheduled_for)).total_seconds())
    print(f"\nschedule due second → task defined ({database_url.split(':')[0]}): {percentiles(delays)}")
    assert min(delays) >= 0 and statistics.median(delays) < 1.0


@pytest.mark.slow
def test_bound_fires_follow_their_message_closely(server, database_url):
    role_for_hook(server, "bench", "on-completion", [*QUEUE_SCOPES, "queue:create-task:lowest:bench/sink"])
    hooks, queue = server.client("hooks"), server.client("queue")
    binding = {"exchange": "exchange/taskcluster-queue/v1/task-completed", "routingKeyPattern": "route.bench.#"}
    template = hook_task(taskQueueId="bench/sink")
    hooks.createHook("bench", "on-completion", hook_definition(task=template, bindings=[binding],
                                                               triggerSchema={"type": "object"}))
    completed = {}
    for _ in range(FIRES):
        task_id = taskcluster.slugId()
        definition = {**hook_task(routes=["bench.done"]), "created": taskcluster.stringDate(taskcluster.fromNow("0 s")),
                      "deadline": taskcluster.stringDate(taskcluster.fromNow("1 hour"))}
        queue.createTask(task_id, definition)
        [claim] = queue.claimWork(TASK_QUEUE, {"workerGroup": "bench", "workerId": "w", "tasks": 1})["tasks"]
        queue.reportCompleted(claim["status"]["taskId"], claim["runId"])
        completed[claim["status"]["taskId"]] = None
        time.sleep(0.05)
    runtime = server.runtime
    give_up = time.monotonic() + 60
    while time.monotonic() < give_up:
        fired = [e for e in events_of(runtime, "hook/bench/on-completion") if type(e).__name__ == "Fired"]
        if len(fired) >= FIRES:
            break
        time.sleep(0.2)
    assert len(fired) == FIRES and all(e.result == "success" for e in fired)
    resolved_at = {}
    for task_id in completed:
        resolved_at[task_id] = [e for e in events_of(runtime, f"task/{task_id}") if type(e).__name__ == "RunResolved"][0]
    delays = []
    for e in fired:
        defined = events_of(runtime, f"task/{e.task_id}")[0]
        source = next(r for r in resolved_at.values() if _message_id(r) == e.source)
        delays.append((e.timestamp - source.timestamp).total_seconds())
        assert defined.timestamp <= e.timestamp
    print(f"\ntask-completed message → binding fire ({database_url.split(':')[0]}): {percentiles(delays)}")
    assert statistics.median(delays) < 1.0


def _message_id(resolved_event) -> str:
    from cairn.domain.pulse_messages import message_id

    return message_id(resolved_event.originator_id, resolved_event.originator_version, 0)
