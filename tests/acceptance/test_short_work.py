"""Where a request's blocking work runs: short requests on the event loop, the rest on request threads.

The queue's task commands and task reads (``Endpoint.short``) run on the
event loop, on both back ends (PostgreSQL's waits are the loop's there:
``tests/store/test_loop_greenlets.py``); everything else on the request
threads, and everything there with ``short_work`` set to ``threads``.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
import slugid

from cairn.api.app import EndpointRunner
from cairn.settings import Settings
from tests.acceptance.queue_helpers import TASK_QUEUE, claim_one, task_definition

SHORT = {"createTask", "claimWork", "reclaimTask", "reportCompleted", "reportFailed", "reportException", "task", "status"}


@pytest.fixture
def threads_of(monkeypatch: pytest.MonkeyPatch) -> dict[str, set[str]]:
    """Endpoint name → the names of the threads its blocking work ran on."""
    seen: dict[str, set[str]] = {}
    original = EndpointRunner._run_sync_here

    def recording(self: EndpointRunner, *args: Any) -> Any:
        seen.setdefault(self.endpoint.name, set()).add(threading.current_thread().name)
        return original(self, *args)

    monkeypatch.setattr(EndpointRunner, "_run_sync_here", recording)
    return seen


def _lifecycle(server: Any) -> None:
    queue = server.client("queue")
    task_id, group = slugid.nice(), slugid.nice()
    queue.createTask(task_id, task_definition(taskGroupId=group))
    queue.task(task_id)
    queue.status(task_id)
    claim = claim_one(queue)
    queue.reclaimTask(task_id, claim["runId"])
    queue.reportCompleted(task_id, claim["runId"])
    queue.listTaskGroup(group)  # not short: on a request thread everywhere
    queue.pendingTasks(TASK_QUEUE)


def test_short_requests_run_on_the_event_loop(server: Any, threads_of: dict[str, set[str]]) -> None:
    _lifecycle(server)
    loop_thread = server.thread.name
    assert SHORT - {"reportFailed", "reportException"} <= set(threads_of)
    for name, threads in threads_of.items():
        (thread,) = threads
        if name in SHORT:
            assert thread == loop_thread, (name, thread)
        else:
            assert thread.startswith("cairn-request"), (name, thread)
    assert {"listTaskGroup", "pendingTasks"} <= set(threads_of)


class TestSetToThreads:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {"short_work": "threads"}

    def test_short_requests_go_to_the_request_threads(self, server: Any, threads_of: dict[str, set[str]]) -> None:
        _lifecycle(server)
        assert set(threads_of) >= {"createTask", "claimWork", "reportCompleted"}
        assert all(thread.startswith("cairn-request") for threads in threads_of.values() for thread in threads)


def test_where_short_work_runs_by_default_and_by_setting() -> None:
    sqlite, postgres = "sqlite:///x.db", "postgresql://u@h:5432/d"
    assert Settings(database_url=sqlite).short_work_on_loop is True
    assert Settings(database_url=postgres).short_work_on_loop is True
    assert Settings(database_url=sqlite, short_work="threads").short_work_on_loop is False
    assert Settings(database_url=postgres, short_work="threads").short_work_on_loop is False
    with pytest.raises(ValueError, match="SHORT_WORK must be 'loop' or 'threads'"):
        Settings(database_url=sqlite, short_work="both")
