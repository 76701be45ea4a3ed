"""/metrics under load: the counters move as the requests and the events do."""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import taskcluster
from prometheus_client.parser import text_string_to_metric_families

from tests.acceptance.queue_helpers import claim_one, task_definition

TASKS = 24


def scrape(server) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = httpx.get(server.root_url + "/metrics", timeout=30)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_counters_move_with_requests_and_events_while_scraped_under_load(server):
    queue = server.client("queue")
    task_queue = f"metrics/q{uuid.uuid4().hex[:8]}"  # a worker type: lowercase letters and digits
    before = scrape(server)

    scrapes: list[int] = []
    stop = threading.Event()

    def keep_scraping() -> None:
        while not stop.is_set():
            scrapes.append(httpx.get(server.root_url + "/metrics", timeout=30).status_code)

    scraper = threading.Thread(target=keep_scraping)
    scraper.start()
    try:
        with ThreadPoolExecutor(6) as pool:
            list(pool.map(lambda _: queue.createTask(taskcluster.slugId(), task_definition(taskQueueId=task_queue)),
                          range(TASKS)))
        claim_one(queue, task_queue)
    finally:
        stop.set()
        scraper.join(30)
    assert scrapes and set(scrapes) == {200}

    after = scrape(server)
    created = dict(service="queue", endpoint="createTask", status="200")
    assert value(after, "cairn_http_requests_total", **created) - value(before, "cairn_http_requests_total", **created) == TASKS
    assert value(after, "cairn_http_requests_total", service="queue", endpoint="claimWork", status="200") >= 1
    timed = dict(service="queue", endpoint="createTask")
    assert value(after, "cairn_http_request_duration_seconds_count", **timed) == value(
        after, "cairn_http_requests_total", **created)
    assert value(after, "cairn_http_request_duration_seconds_sum", **timed) > 0
    # One TaskDefined (and one RunPending) per task; one RunClaimed for the claim.
    appended = {labels[0][1]: v for (name, labels), v in after.items() if name == "cairn_events_appended_total"}
    earlier = {labels[0][1]: v for (name, labels), v in before.items() if name == "cairn_events_appended_total"}
    grown = {kind: appended[kind] - earlier.get(kind, 0) for kind in appended}
    assert sum(grown.values()) >= 2 * TASKS + 1, grown
    assert TASKS in grown.values(), grown
    # The queue as it is now: one claimed, the others pending.
    assert value(after, "cairn_task_runs", task_queue_id=task_queue, state="pending") == TASKS - 1
    assert value(after, "cairn_task_runs", task_queue_id=task_queue, state="running") == 1
    assert value(after, "cairn_log_head_position") >= sum(grown.values())
    if server.runtime.settings.backend == "postgres":
        assert value(after, "cairn_db_pool_connections") >= 1
        assert value(after, "cairn_db_pool_max_connections") >= value(after, "cairn_db_pool_connections")


def test_consumer_positions_and_lag_follow_the_log(server):
    queue = server.client("queue")
    queue.createTask(taskcluster.slugId(), task_definition())
    head = 0
    give_up = time.monotonic() + 20
    while time.monotonic() < give_up:
        samples = scrape(server)
        head = value(samples, "cairn_log_head_position")
        lags = {labels: v for (name, labels), v in samples.items() if name == "cairn_consumer_lag_events"}
        positions = {labels: v for (name, labels), v in samples.items() if name == "cairn_consumer_position"}
        if lags and all(v == 0 for v in lags.values()):
            break
        time.sleep(0.2)
    assert head > 0
    assert lags and all(v == 0 for v in lags.values()), lags
    assert all(v == head for v in positions.values()), positions
    assert value(samples, "cairn_claim_work_waiting") == 0


def test_claim_work_waiters_are_counted(server):
    queue = server.client("queue")
    waiting = threading.Thread(
        target=queue.claimWork, args=("metrics/idle", {"workerGroup": "g", "workerId": "w", "tasks": 1})
    )
    waiting.start()
    try:
        give_up = time.monotonic() + 10
        while value(scrape(server), "cairn_claim_work_waiting") < 1 and time.monotonic() < give_up:
            time.sleep(0.1)
        assert value(scrape(server), "cairn_claim_work_waiting") == 1
    finally:
        queue.createTask(taskcluster.slugId(), task_definition(taskQueueId="metrics/idle"))
        waiting.join(30)


@pytest.fixture
def settings_overrides(request):
    """Pulse publishing for the test about it, which needs RabbitMQ."""
    if "pulse" in request.node.name:
        return {"amqp_url": request.getfixturevalue("amqp_url")}
    return {}


def test_pulse_publishes_are_counted(server, settings_overrides):
    server.client("queue").createTask(taskcluster.slugId(), task_definition())
    give_up = time.monotonic() + 20
    while value(scrape(server), "cairn_pulse_messages_published_total") < 1 and time.monotonic() < give_up:
        time.sleep(0.2)
    samples = scrape(server)
    assert value(samples, "cairn_pulse_messages_published_total") >= 1
    assert value(samples, "cairn_pulse_publish_failures_total") == 0
