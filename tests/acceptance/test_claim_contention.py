"""Many workers claiming from one queue: every task is claimed exactly once, none lost."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import taskcluster

from tests.acceptance.queue_helpers import task_definition

CLAIMERS = 32
QUEUE_ID = "cairn-test/contended"
# PostgreSQL is where claims race for real (SKIP LOCKED across connections);
# SQLite serialises writers in-process, so a smaller run shows the same.
TASKS_BY_BACKEND = {"postgres": 2000, "sqlite": 500}


def test_32_claimers_take_every_task_exactly_once(server):
    TASKS = TASKS_BY_BACKEND[server.runtime.settings.backend]
    creator = server.client("queue")
    task_ids = [taskcluster.slugId() for _ in range(TASKS)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda t: creator.createTask(t, task_definition(taskQueueId=QUEUE_ID)), task_ids))

    claims: list[tuple[str, int]] = []
    lock = threading.Lock()
    done = threading.Event()

    def claimer(n: int) -> None:
        queue = server.client("queue")
        while not done.is_set():
            got = queue.claimWork(QUEUE_ID, {"workerGroup": "contention", "workerId": f"w{n}", "tasks": 4})["tasks"]
            for claim in got:
                task_id, run_id = claim["status"]["taskId"], claim["runId"]
                queue.reportCompleted(task_id, str(run_id))
                with lock:
                    claims.append((task_id, run_id))
                    if len(claims) >= TASKS:
                        done.set()

    threads = [threading.Thread(target=claimer, args=(n,)) for n in range(CLAIMERS)]
    for thread in threads:
        thread.start()
    assert done.wait(240), f"only {len(claims)} of {TASKS} claimed"
    # Release the claimers still waiting in claimWork with one extra task each.
    extra = [taskcluster.slugId() for _ in range(CLAIMERS)]
    for task_id in extra:
        creator.createTask(task_id, task_definition(taskQueueId=QUEUE_ID))
    for thread in threads:
        thread.join(60)
        assert not thread.is_alive()

    counted = Counter(claims)
    assert [c for c, n in counted.items() if n > 1] == []
    claimed_tasks = {t for t, _ in claims}
    assert set(task_ids) <= claimed_tasks
    assert all(run == 0 for _, run in claims)

    states: Counter[str] = Counter()
    for start in range(0, TASKS, 500):
        chunk = task_ids[start:start + 500]
        for status in creator.statuses({"taskIds": chunk})["statuses"]:
            states[status["status"]["state"]] += 1
    assert states == Counter({"completed": TASKS})
