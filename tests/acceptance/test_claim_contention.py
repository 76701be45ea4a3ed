"""Many workers claiming at once: every task is claimed exactly once, none lost.

Through the service (32 concurrent transactions), and over HTTP with the
official client: 32 and 64 workers on one queue, and 16 workers each
claiming from two or three of four overlapping queues while the tasks are
still being created. The long cases run with ``make test-stress``.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

import pytest
import taskcluster

from cairn.domain.aggregate import acting_as
from cairn.domain.timestamps import utcnow
from tests.acceptance.queue_helpers import task_definition

Claim = tuple[str, int]
#: Runs one claimWork call asks for.
BATCH = 4


def claim_everything(
    tasks: int,
    claimers: int,
    claim_batch: Callable[[int], Iterable[Claim]],
    complete: Callable[[int, str, int], None],
    release: Callable[[], None],
    alongside: Callable[[], None] = lambda: None,
) -> list[Claim]:
    """Run ``claimers`` threads until ``tasks`` runs are claimed; returns every claim made.

    ``alongside`` runs in one more thread meanwhile (creating the tasks, say);
    ``release`` gives claimers that still wait something to claim.
    """
    claims: list[Claim] = []
    lock = threading.Lock()
    done = threading.Event()
    errors: list[BaseException] = []

    def guarded(step: Callable[..., None], *args: int) -> None:
        try:
            step(*args)
        except BaseException as e:  # surfaced below, with the claims so far
            errors.append(e)
            done.set()

    def claimer(n: int) -> None:
        while not done.is_set():
            for task_id, run_id in claim_batch(n):
                complete(n, task_id, run_id)
                with lock:
                    claims.append((task_id, run_id))
                    if len(claims) >= tasks:
                        done.set()

    threads = [threading.Thread(target=guarded, args=(claimer, n)) for n in range(claimers)]
    helper = threading.Thread(target=guarded, args=(alongside,))
    for thread in [helper, *threads]:
        thread.start()
    assert done.wait(300), f"only {len(claims)} of {tasks} claimed"
    # Claimers still waiting in claimWork are handed one more task each, and stop.
    give_up = time.monotonic() + 60
    while any(thread.is_alive() for thread in threads):
        assert time.monotonic() < give_up, "claimers did not stop"
        release()
        threads[0].join(0.05)
    helper.join(60)
    assert not errors, errors[0]
    return claims


def assert_claimed_once(claims: list[Claim], task_ids: list[str]) -> None:
    assert [c for c, n in Counter(claims).items() if n > 1] == []
    assert set(task_ids) <= {t for t, _ in claims}
    assert all(run == 0 for _, run in claims)


def assert_all_completed(queue, task_ids: list[str]) -> None:
    states: Counter[str] = Counter()
    for start in range(0, len(task_ids), 1000):
        statuses = queue.statuses({"taskIds": task_ids[start:start + 1000]})["statuses"]
        states.update(s["status"]["state"] for s in statuses)
    assert states == Counter({"completed": len(task_ids)})


def create_tasks(queue, task_queues: dict[str, str]) -> None:
    """Create each task ({task id: task queue}) from eight threads at once."""
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda t: queue.createTask(t, task_definition(taskQueueId=task_queues[t])), task_queues))


def test_32_claimers_through_the_service_take_2000_tasks_exactly_once(runtime):
    """The claim mechanism itself, under 32 concurrent transactions (SKIP LOCKED on PostgreSQL)."""
    queue_id, tasks, claimers = "cairn-test/contended", 2000, 32
    queue = runtime.queue
    task_ids = [taskcluster.slugId() for _ in range(tasks)]
    with acting_as("tests"):
        for task_id in task_ids:
            queue.define_task(task_id, task_definition(taskQueueId=queue_id), utcnow())

    def claim_batch(n: int):
        with acting_as(f"worker-{n}"):
            claimed = runtime.claim_for_worker(queue_id, "contention", f"w{n}", BATCH)
        return [(c.task.task_id, c.run_id) for c in claimed]

    def complete(n: int, task_id: str, run_id: int) -> None:
        with acting_as(f"worker-{n}"):
            queue.report(task_id, run_id, "completed", "completed", utcnow())

    claims = claim_everything(tasks, claimers, claim_batch, complete, release=lambda: None)
    assert_claimed_once(claims, task_ids)
    states = Counter(row["state"] for row in runtime.queue_reads.task_rows(task_ids).values())
    assert states == Counter({"completed": tasks})


def workers_on_one_queue(server, workers: int, tasks: int) -> None:
    """``workers`` official clients long-polling one queue, the tasks created before they start."""
    queue_id = f"cairn-test/contended-{workers}"
    creator = server.client("queue")
    task_ids = [taskcluster.slugId() for _ in range(tasks)]
    create_tasks(creator, dict.fromkeys(task_ids, queue_id))
    clients = [server.client("queue") for _ in range(workers)]

    def claim_batch(n: int):
        got = clients[n].claimWork(queue_id, {"workerGroup": "contention", "workerId": f"w{n}", "tasks": BATCH})
        return [(c["status"]["taskId"], c["runId"]) for c in got["tasks"]]

    def complete(n: int, task_id: str, run_id: int) -> None:
        clients[n].reportCompleted(task_id, str(run_id))

    def release() -> None:
        creator.createTask(taskcluster.slugId(), task_definition(taskQueueId=queue_id))

    claims = claim_everything(tasks, workers, claim_batch, complete, release)
    assert_claimed_once(claims, task_ids)
    assert_all_completed(creator, task_ids)


def test_32_workers_over_http_take_every_task_exactly_once(server):
    """The same through the official client, claimWork's long poll included."""
    workers_on_one_queue(server, workers=32, tasks=300)


def test_64_workers_over_http_take_every_task_exactly_once(server):
    """64 long polls at once: more than the server's worker threads and database connections."""
    workers_on_one_queue(server, workers=64, tasks=320)


@pytest.mark.slow
def test_64_workers_over_http_take_3000_tasks_exactly_once(server):
    workers_on_one_queue(server, workers=64, tasks=3000)


OVERLAPPING = [f"cairn-test/overlap-{i}" for i in range(4)]


def queues_of(worker: int) -> list[str]:
    """Two or three neighbouring queues of the four: each queue is shared by eight or twelve of 16 workers."""
    return [OVERLAPPING[(worker + i) % len(OVERLAPPING)] for i in range(2 + worker % 2)]


def workers_on_overlapping_queues(server, workers: int, tasks: int) -> None:
    """Each worker long-polls each of its queues at once, while the tasks are being created."""
    creator = server.client("queue")
    task_queues = {taskcluster.slugId(): OVERLAPPING[i % len(OVERLAPPING)] for i in range(tasks)}
    polls = [(worker, queue_id) for worker in range(workers) for queue_id in queues_of(worker)]
    clients = [server.client("queue") for _ in polls]

    def claim_batch(n: int):
        worker, queue_id = polls[n]
        got = clients[n].claimWork(queue_id, {"workerGroup": "overlap", "workerId": f"w{worker}", "tasks": BATCH})
        assert all(c["task"]["taskQueueId"] == queue_id for c in got["tasks"])
        return [(c["status"]["taskId"], c["runId"]) for c in got["tasks"]]

    def complete(n: int, task_id: str, run_id: int) -> None:
        clients[n].reportCompleted(task_id, str(run_id))

    def release() -> None:
        for queue_id in OVERLAPPING:
            creator.createTask(taskcluster.slugId(), task_definition(taskQueueId=queue_id))

    claims = claim_everything(
        tasks, len(polls), claim_batch, complete, release, alongside=lambda: create_tasks(creator, task_queues)
    )
    task_ids = list(task_queues)
    assert_claimed_once(claims, task_ids)
    assert_all_completed(creator, task_ids)


def test_16_workers_on_overlapping_queues_take_every_task_exactly_once(server):
    workers_on_overlapping_queues(server, workers=16, tasks=300)


@pytest.mark.slow
def test_16_workers_on_overlapping_queues_take_3000_tasks_exactly_once(server):
    workers_on_overlapping_queues(server, workers=16, tasks=3000)
