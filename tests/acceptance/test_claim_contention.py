"""Many workers claiming from one queue: every task is claimed exactly once, none lost."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import taskcluster

from cairn.domain.aggregate import acting_as
from cairn.domain.timestamps import utcnow
from tests.acceptance.queue_helpers import task_definition

CLAIMERS = 32


def claim_everything(tasks: int, claim_batch, complete, release) -> list[tuple[str, int]]:
    """Run CLAIMERS threads until ``tasks`` runs are claimed; returns every claim made."""
    claims: list[tuple[str, int]] = []
    lock = threading.Lock()
    done = threading.Event()
    errors: list[BaseException] = []

    def claimer(n: int) -> None:
        try:
            while not done.is_set():
                for task_id, run_id in claim_batch(n):
                    complete(n, task_id, run_id)
                    with lock:
                        claims.append((task_id, run_id))
                        if len(claims) >= tasks:
                            done.set()
        except BaseException as e:  # surfaced below, with the claims so far
            errors.append(e)
            done.set()

    threads = [threading.Thread(target=claimer, args=(n,)) for n in range(CLAIMERS)]
    for thread in threads:
        thread.start()
    assert done.wait(300), f"only {len(claims)} of {tasks} claimed"
    release()
    for thread in threads:
        thread.join(60)
        assert not thread.is_alive()
    assert not errors, errors[0]
    return claims


def assert_claimed_once(claims: list[tuple[str, int]], task_ids: list[str]) -> None:
    assert [c for c, n in Counter(claims).items() if n > 1] == []
    assert set(task_ids) <= {t for t, _ in claims}
    assert all(run == 0 for _, run in claims)


def test_32_claimers_through_the_service_take_2000_tasks_exactly_once(runtime):
    """The claim mechanism itself, under 32 concurrent transactions (SKIP LOCKED on PostgreSQL)."""
    queue_id, tasks = "cairn-test/contended", 2000
    queue = runtime.queue
    task_ids = [taskcluster.slugId() for _ in range(tasks)]
    with acting_as("tests"):
        for task_id in task_ids:
            queue.define_task(task_id, task_definition(taskQueueId=queue_id), utcnow())

    def claim_batch(n: int):
        with acting_as(f"worker-{n}"):
            return [(c.task.task_id, c.run_id) for c in runtime.claim_for_worker(queue_id, "contention", f"w{n}", 4)]

    def complete(n: int, task_id: str, run_id: int) -> None:
        with acting_as(f"worker-{n}"):
            queue.report(task_id, run_id, "completed", "completed", utcnow())

    claims = claim_everything(tasks, claim_batch, complete, release=lambda: None)
    assert_claimed_once(claims, task_ids)
    states = Counter(row["state"] for row in runtime.queue_reads.task_rows(task_ids).values())
    assert states == Counter({"completed": tasks})


def test_32_workers_over_http_take_every_task_exactly_once(server):
    """The same through the official client, claimWork's long poll included."""
    queue_id, tasks = "cairn-test/contended-http", 300
    creator = server.client("queue")
    task_ids = [taskcluster.slugId() for _ in range(tasks)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda t: creator.createTask(t, task_definition(taskQueueId=queue_id)), task_ids))
    clients = [server.client("queue") for _ in range(CLAIMERS)]

    def claim_batch(n: int):
        got = clients[n].claimWork(queue_id, {"workerGroup": "contention", "workerId": f"w{n}", "tasks": 4})
        return [(c["status"]["taskId"], c["runId"]) for c in got["tasks"]]

    def complete(n: int, task_id: str, run_id: int) -> None:
        clients[n].reportCompleted(task_id, str(run_id))

    def release() -> None:
        # Claimers still waiting in claimWork each get one more task, and stop.
        for _ in range(CLAIMERS):
            creator.createTask(taskcluster.slugId(), task_definition(taskQueueId=queue_id))

    claims = claim_everything(tasks, claim_batch, complete, release)
    assert_claimed_once(claims, task_ids)
    statuses = creator.statuses({"taskIds": task_ids})["statuses"]
    assert Counter(s["status"]["state"] for s in statuses) == Counter({"completed": tasks})
