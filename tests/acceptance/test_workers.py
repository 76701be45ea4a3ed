"""Worker metadata through the official client: queues and workers become known by
being used, counts follow claims and resolutions, and a quarantined worker
claims nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Callable

import pytest
import taskcluster

from cairn.domain.aggregate import acting_as
from cairn.domain.queue.worker import worker_key
from cairn.domain.timestamps import parse_time, utcnow
from cairn.projections.history import read_history
from tests.acceptance.queue_helpers import claim_one, task_definition

PROVISIONER = "cairn-prov"
WORKER_TYPE = "workers-a"
QUEUE = f"{PROVISIONER}/{WORKER_TYPE}"
Failure = taskcluster.exceptions.TaskclusterRestFailure


def create_tasks(queue: Any, task_queue_id: str, n: int) -> list[str]:
    task_ids = [taskcluster.slugId() for _ in range(n)]
    for task_id in task_ids:
        queue.createTask(task_id, task_definition(taskQueueId=task_queue_id))
    return task_ids


def error_of(call: Callable[[], Any]) -> tuple[int, str]:
    with pytest.raises(Failure) as failure:
        call()
    return failure.value.status_code, failure.value.body["code"]


def all_pages(fetch: Callable[[dict[str, Any]], dict[str, Any]], key: str, limit: int) -> tuple[list[Any], int]:
    """Every item of a paged listing, fetched ``limit`` at a time, and how many pages it took."""
    items: list[Any] = []
    pages, token = 0, None
    while True:
        query: dict[str, Any] = {"limit": limit}
        if token:
            query["continuationToken"] = token
        response = fetch(query)
        items += response[key]
        pages += 1
        token = response.get("continuationToken")
        if not token:
            return items, pages


def close_to(text: str, expected: Any, slack: timedelta = timedelta(seconds=30)) -> bool:
    return abs(parse_time(text) - expected) < slack


def test_a_defined_task_makes_its_queue_known_and_a_claim_its_worker(server):
    queue = server.client("queue")
    [task_id] = create_tasks(queue, QUEUE, 1)

    known = queue.getTaskQueue(QUEUE)
    assert known["taskQueueId"] == QUEUE
    assert (known["stability"], known["description"]) == ("experimental", "")
    assert close_to(known["expires"], utcnow() + timedelta(days=5))
    assert queue.listWorkers(PROVISIONER, WORKER_TYPE)["workers"] == []

    claim = claim_one(queue, QUEUE, worker_id="w1")
    assert claim["status"]["taskId"] == task_id

    worker = queue.getWorker(PROVISIONER, WORKER_TYPE, "tests", "w1")
    assert worker["recentTasks"] == [{"taskId": task_id, "runId": 0}]
    names = ("provisionerId", "workerType", "taskQueueId", "workerGroup", "workerId")
    assert {k: worker[k] for k in names} == {
        "provisionerId": PROVISIONER,
        "workerType": WORKER_TYPE,
        "taskQueueId": QUEUE,
        "workerGroup": "tests",
        "workerId": "w1",
    }
    assert close_to(worker["firstClaim"], utcnow())
    assert worker["lastDateActive"] == worker["firstClaim"]
    assert close_to(worker["expires"], utcnow() + timedelta(days=1))
    assert "quarantineUntil" not in worker

    [listed] = queue.listWorkers(PROVISIONER, WORKER_TYPE)["workers"]
    assert listed == {
        "workerGroup": "tests",
        "workerId": "w1",
        "firstClaim": worker["firstClaim"],
        "lastDateActive": worker["lastDateActive"],
        "latestTask": {"taskId": task_id, "runId": 0},
    }

    provisioners = {p["provisionerId"]: p for p in queue.listProvisioners()["provisioners"]}
    assert provisioners[PROVISIONER] == queue.getProvisioner(PROVISIONER)
    # A busy queue's activity is refreshed at most every half hour, as in Taskcluster.
    assert close_to(provisioners[PROVISIONER]["lastDateActive"], utcnow())
    [worker_type] = queue.listWorkerTypes(PROVISIONER)["workerTypes"]
    assert worker_type == queue.getWorkerType(PROVISIONER, WORKER_TYPE)
    assert worker_type["taskQueueId"] == QUEUE
    assert worker_type["lastDateActive"] == provisioners[PROVISIONER]["lastDateActive"]
    assert QUEUE in [q["taskQueueId"] for q in queue.listTaskQueues()["taskQueues"]]
    assert queue.getTaskQueue(QUEUE)["lastDateActive"] == worker_type["lastDateActive"]

    assert error_of(lambda: queue.getProvisioner("nobody")) == (404, "ResourceNotFound")
    assert error_of(lambda: queue.getWorkerType(PROVISIONER, "nothing")) == (404, "ResourceNotFound")
    assert error_of(lambda: queue.getTaskQueue(f"{PROVISIONER}/nothing")) == (404, "ResourceNotFound")
    unknown = lambda: queue.getWorker(PROVISIONER, WORKER_TYPE, "tests", "w2")  # noqa: E731
    assert error_of(unknown) == (404, "ResourceNotFound")
    assert error_of(lambda: queue.getTaskQueue("not a queue")) == (400, "InvalidRequestArguments")


def test_counts_and_listings_follow_claims_and_resolutions(server):
    queue = server.client("queue")
    task_ids = create_tasks(queue, QUEUE, 3)
    split = {"provisionerId": PROVISIONER, "workerType": WORKER_TYPE, "taskQueueId": QUEUE}

    assert queue.pendingTasks(QUEUE) == {**split, "pendingTasks": 3}
    assert queue.taskQueueCounts(QUEUE) == {**split, "pendingTasks": 3, "claimedTasks": 0}
    pending = queue.listPendingTasks(QUEUE)["tasks"]
    assert [(t["taskId"], t["runId"]) for t in pending] == [(t, 0) for t in task_ids]
    assert pending[0]["task"]["taskQueueId"] == QUEUE
    assert pending[0]["task"]["provisionerId"] == PROVISIONER
    assert close_to(pending[0]["inserted"], utcnow())
    assert queue.listClaimedTasks(QUEUE)["tasks"] == []

    claims = queue.claimWork(QUEUE, {"workerGroup": "tests", "workerId": "w1", "tasks": 2})["tasks"]
    claimed_ids = [c["status"]["taskId"] for c in claims]
    assert claimed_ids == task_ids[:2]
    assert queue.taskQueueCounts(QUEUE) == {**split, "pendingTasks": 1, "claimedTasks": 2}
    assert [t["taskId"] for t in queue.listPendingTasks(QUEUE)["tasks"]] == task_ids[2:]
    claimed = queue.listClaimedTasks(QUEUE)["tasks"]
    assert sorted(t["taskId"] for t in claimed) == sorted(claimed_ids)
    assert {(t["workerGroup"], t["workerId"], t["runId"]) for t in claimed} == {("tests", "w1", 0)}
    assert {t["claimed"] for t in claimed} == {c["status"]["runs"][0]["started"] for c in claims}
    assert claimed[0]["task"]["taskQueueId"] == QUEUE

    queue.reportCompleted(claimed_ids[0], "0")
    assert queue.taskQueueCounts(QUEUE) == {**split, "pendingTasks": 1, "claimedTasks": 1}
    assert [t["taskId"] for t in queue.listClaimedTasks(QUEUE)["tasks"]] == [claimed_ids[1]]

    batch = queue.taskQueueCountsBatch({"taskQueueIds": [QUEUE, "cairn-prov/empty"]})
    assert batch == {
        "taskQueueCounts": [
            {**split, "pendingTasks": 1, "claimedTasks": 1},
            {"provisionerId": PROVISIONER, "workerType": "empty", "taskQueueId": "cairn-prov/empty",
             "pendingTasks": 0, "claimedTasks": 0},
        ]
    }
    recent = queue.getWorker(PROVISIONER, WORKER_TYPE, "tests", "w1")["recentTasks"]
    assert recent == [{"taskId": t, "runId": 0} for t in claimed_ids]

    # Every queue must be permitted for the batch.
    limited = server.client(
        "queue",
        authorizedScopes=[f"queue:pending-count:{QUEUE}", f"queue:claimed-count:{QUEUE}"],
    )
    assert limited.taskQueueCountsBatch({"taskQueueIds": [QUEUE]})["taskQueueCounts"][0]["pendingTasks"] == 1
    denied = lambda: limited.taskQueueCountsBatch({"taskQueueIds": [QUEUE, "cairn-prov/empty"]})  # noqa: E731
    assert error_of(denied) == (403, "InsufficientScopes")


def test_a_quarantined_worker_claims_nothing(server, runtime):
    queue = server.client("queue")
    create_tasks(queue, QUEUE, 1)
    claim_one(queue, QUEUE, worker_id="w1")
    in_an_hour = {"quarantineUntil": taskcluster.stringDate(taskcluster.fromNow("1 hour"))}
    unknown = lambda: queue.quarantineWorker(PROVISIONER, WORKER_TYPE, "tests", "never-seen", in_an_hour)  # noqa: E731
    assert error_of(unknown) == (404, "ResourceNotFound")

    [waiting] = create_tasks(queue, QUEUE, 1)
    until = taskcluster.stringDate(taskcluster.fromNow("1 hour"))
    worker = queue.quarantineWorker(
        PROVISIONER, WORKER_TYPE, "tests", "w1", {"quarantineUntil": until, "quarantineInfo": "flaky disk"}
    )
    assert close_to(worker["quarantineUntil"], parse_time(until), timedelta(milliseconds=1))
    [change] = worker["quarantineDetails"]
    assert change["clientId"] == "static/root"
    assert change["quarantineInfo"] == "flaky disk"
    assert change["quarantineUntil"] == worker["quarantineUntil"]
    assert close_to(change["updatedAt"], utcnow())
    assert queue.getWorker(PROVISIONER, WORKER_TYPE, "tests", "w1") == worker

    # The quarantined worker claims nothing, and the task stays pending.
    with acting_as("tests"):
        assert runtime.claim_for_worker(QUEUE, "tests", "w1", 1) == []
    assert queue.taskQueueCounts(QUEUE)["pendingTasks"] == 1

    def listed(quarantined: str) -> list[str]:
        workers = queue.listWorkers(PROVISIONER, WORKER_TYPE, query={"quarantined": quarantined})["workers"]
        return [w["workerId"] for w in workers]

    assert listed("true") == ["w1"]
    assert listed("false") == []
    assert error_of(lambda: listed("maybe")) == (400, "InvalidRequestArguments")

    # Another worker claims it at once.
    assert claim_one(queue, QUEUE, worker_id="w2")["status"]["taskId"] == waiting
    assert listed("false") == ["w2"]

    # Quarantining until now lifts the quarantine.
    [later] = create_tasks(queue, QUEUE, 1)
    a_second_ago = {"quarantineUntil": taskcluster.stringDate(taskcluster.fromNow("-1 second"))}
    lifted = queue.quarantineWorker(PROVISIONER, WORKER_TYPE, "tests", "w1", a_second_ago)
    assert [c["quarantineInfo"] for c in lifted["quarantineDetails"]] == ["flaky disk", "[unspecified]"]
    with acting_as("tests"):
        assert [c.task.task_id for c in runtime.claim_for_worker(QUEUE, "tests", "w1", 1)] == [later]
    assert "quarantineUntil" not in queue.listWorkers(PROVISIONER, WORKER_TYPE)["workers"][0]

    history = read_history(runtime.log, worker_key(QUEUE, "tests", "w1"))
    assert [(h.type, h.actor) for h in history] == [
        ("WorkerCreated", "static/root"),
        ("WorkerQuarantined", "static/root"),
        ("WorkerQuarantined", "static/root"),
    ]
    assert history[1].data == {"until": worker["quarantineUntil"], "reason": "flaky disk"}


def test_declare_worker_makes_it_and_its_queue_known(server):
    queue = server.client("queue")
    expires = taskcluster.fromNow("2 days")
    body = {"expires": taskcluster.stringDate(expires)}
    declared = queue.declareWorker("cairn-decl", "pool", "grp", "w9", body)
    assert declared["taskQueueId"] == "cairn-decl/pool"
    assert (declared["workerGroup"], declared["workerId"]) == ("grp", "w9")
    assert declared["recentTasks"] == []
    assert close_to(declared["expires"], expires, timedelta(milliseconds=1))
    assert close_to(declared["firstClaim"], utcnow())
    assert queue.getWorker("cairn-decl", "pool", "grp", "w9") == declared
    assert queue.getTaskQueue("cairn-decl/pool")["expires"] == declared["expires"]

    # An earlier expiry does not shorten the worker's life.
    sooner = {"expires": taskcluster.stringDate(taskcluster.fromNow("1 hour"))}
    again = queue.declareWorker("cairn-decl", "pool", "grp", "w9", sooner)
    assert again["expires"] == declared["expires"]

    scope = "queue:declare-worker:cairn-decl/pool/grp/w9#expires"
    allowed = server.client("queue", authorizedScopes=[scope])
    assert allowed.declareWorker("cairn-decl", "pool", "grp", "w9", body)["workerId"] == "w9"
    other = server.client("queue", authorizedScopes=["queue:declare-worker:cairn-decl/pool/grp/w8#expires"])
    denied = lambda: other.declareWorker("cairn-decl", "pool", "grp", "w9", body)  # noqa: E731
    assert error_of(denied) == (403, "InsufficientScopes")

    # A declared worker can be quarantined.
    until = taskcluster.stringDate(taskcluster.fromNow("1 hour"))
    assert "quarantineUntil" in queue.quarantineWorker("cairn-decl", "pool", "grp", "w9", {"quarantineUntil": until})


def test_listings_are_paged(server):
    queue = server.client("queue")
    for worker_type in ("pa", "pb", "pc"):
        create_tasks(queue, f"cairn-page/{worker_type}", 1)
    create_tasks(queue, "cairn-page2/x", 1)
    create_tasks(queue, "cairn-page/pa", 3)  # four pending on cairn-page/pa
    for worker_id in ("w1", "w2", "w3"):
        claim_one(queue, "cairn-page/pa", worker_id=worker_id)

    worker_types, pages = all_pages(lambda q: queue.listWorkerTypes("cairn-page", query=q), "workerTypes", 2)
    assert ([w["workerType"] for w in worker_types], pages) == (["pa", "pb", "pc"], 2)
    task_queues, pages = all_pages(lambda q: queue.listTaskQueues(query=q), "taskQueues", 1)
    assert [t["taskQueueId"] for t in task_queues] == [
        "cairn-page/pa", "cairn-page/pb", "cairn-page/pc", "cairn-page2/x"
    ]
    provisioners, pages = all_pages(lambda q: queue.listProvisioners(query=q), "provisioners", 1)
    assert [p["provisionerId"] for p in provisioners] == ["cairn-page", "cairn-page2"]
    workers, pages = all_pages(lambda q: queue.listWorkers("cairn-page", "pa", query=q), "workers", 2)
    assert ([w["workerId"] for w in workers], pages) == (["w1", "w2", "w3"], 2)
    claimed, pages = all_pages(lambda q: queue.listClaimedTasks("cairn-page/pa", query=q), "tasks", 2)
    assert (len({t["taskId"] for t in claimed}), pages) == (3, 2)
    pending, pages = all_pages(lambda q: queue.listPendingTasks("cairn-page/pb", query=q), "tasks", 1)
    assert len(pending) == 1
    more = create_tasks(queue, "cairn-page/pb", 2)
    pending, pages = all_pages(lambda q: queue.listPendingTasks("cairn-page/pb", query=q), "tasks", 1)
    assert [t["taskId"] for t in pending][1:] == more

    bad = lambda: queue.listPendingTasks("cairn-page/pb", query={"continuationToken": "bm90LWEtbnVtYmVy"})  # noqa: E731
    assert error_of(bad) == (400, "InvalidRequestArguments")
    bad = lambda: queue.listWorkers("cairn-page", "pa", query={"continuationToken": "bm8tc2xhc2g"})  # noqa: E731
    assert error_of(bad) == (400, "InvalidRequestArguments")
