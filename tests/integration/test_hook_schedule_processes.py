"""Two Cairn processes on one PostgreSQL database fire each scheduled time of a hook once."""

from __future__ import annotations

import time

import pytest
import taskcluster

from cairn.domain.timestamps import parse_time
from cairn.runtime import Runtime
from tests import conftest
from tests.acceptance.hooks_helpers import QUEUE_SCOPES, hook_definition
from tests.integration.cairn_process import root_options, start_server, stop_server


def test_two_processes_fire_each_due_time_once(database_url, tmp_path):
    if not database_url.startswith("postgresql"):
        pytest.skip("several processes share PostgreSQL only")
    ports = [conftest.free_port(), conftest.free_port()]
    processes = [start_server(database_url, tmp_path / f"data{n}", port) for n, port in enumerate(ports)]
    try:
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        auth = taskcluster.Auth(root_options(urls[0]))
        auth.createRole("hook-id:ci/every-2s", {"description": "", "scopes": QUEUE_SCOPES})
        hooks = [taskcluster.Hooks(root_options(url)) for url in urls]
        hooks[1].createHook("ci", "every-2s", hook_definition(schedule=["*/2 * * * * *"]))
        time.sleep(7)
        hooks[0].removeHook("ci", "every-2s")
        # The removal ends the fires; what fired is in the log.
    finally:
        for process in processes:
            stop_server(process)
    # Every fire recorded for the hook, straight from the log.
    runtime = Runtime(conftest.test_settings(database_url, tmp_path))
    try:
        events = runtime.log.recorder.select_events("hook/ci/every-2s")
        fired = [runtime.log.mapper.to_domain_event(e) for e in events if e.topic.endswith(".Fired")]
        due_times = [e.scheduled_for for e in fired]
        assert len(due_times) >= 2, due_times
        assert len(set(due_times)) == len(due_times), f"a due time fired twice: {due_times}"
        gaps = {(parse_time(b) - parse_time(a)).total_seconds() for a, b in zip(due_times, due_times[1:])}
        assert gaps == {2.0}, f"a due time was skipped: {due_times}"
        assert all(e.result == "success" and runtime.log.get(f"task/{e.task_id}") for e in fired)
    finally:
        runtime.close()
