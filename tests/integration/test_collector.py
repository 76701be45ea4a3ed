"""A serving process's garbage collector: settled once loaded, seen in /metrics."""

from __future__ import annotations

import gc
import re
import weakref

import httpx
import taskcluster

from cairn.api.schemas import load_schemas
from cairn.collector import YOUNG_THRESHOLD, settle_for_serving
from cairn.server import serving_app
from tests.acceptance.queue_helpers import task_definition
from tests.conftest import free_port
from tests.integration.cairn_process import root_options, start_server, stop_server

REQUESTS = 200


def _young_collections(root_url: str) -> float:
    text = httpx.get(root_url + "/metrics", timeout=30).text
    found = re.search(r'^python_gc_collections_total\{generation="0"\} (\S+)$', text, re.MULTILINE)
    assert found, "no python_gc_collections_total for generation 0 in /metrics"
    return float(found.group(1))


def test_a_served_request_rarely_runs_the_collector(database_url, tmp_path):
    port = free_port()
    root_url = f"http://127.0.0.1:{port}"
    server = start_server(database_url, tmp_path, port)
    try:
        queue = taskcluster.Queue(root_options(root_url))
        queue.createTask(taskcluster.slugId(), task_definition(taskQueueId="collector/warm"))  # loads the schemas
        before = _young_collections(root_url)
        for _ in range(REQUESTS):
            queue.createTask(taskcluster.slugId(), task_definition(taskQueueId="collector/q"))
        collections = _young_collections(root_url) - before
        # With the interpreter's default threshold (700) the young generation is
        # collected about once per 20 createTask calls one at a time (10-12 here),
        # more often under concurrent load; settled, once or twice at most.
        assert collections < REQUESTS / 50, collections
        metrics = httpx.get(root_url + "/metrics", timeout=30).text
        assert re.search(r"^process_resident_memory_bytes \d", metrics, re.MULTILINE)
        assert re.search(r"^process_cpu_seconds_total \d", metrics, re.MULTILINE)
    finally:
        stop_server(server)


def test_settling_still_collects_cycles_made_afterwards():
    threshold = gc.get_threshold()
    try:
        settle_for_serving()
        assert gc.get_threshold()[0] == YOUNG_THRESHOLD
        assert gc.get_threshold()[1:] == threshold[1:]
        assert gc.get_freeze_count() > 0

        class Node:
            pass

        a, b = Node(), Node()
        a.other, b.other = b, a
        seen = weakref.ref(a)
        del a, b  # only a collection frees a cycle
        assert seen() is not None
        gc.collect()
        assert seen() is None, "the cycle was not collected"
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


def test_a_serving_app_has_every_schema_loaded_before_its_first_request(runtime):
    load_schemas.cache_clear()  # as in a process that has not loaded them
    threshold = gc.get_threshold()
    try:
        serving_app(runtime)
        assert load_schemas.cache_info().currsize == 1
        assert len(load_schemas().documents) > 100
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
