"""How long a mail takes: from a task's resolution, as recorded, to the mail's arrival at the SMTP server.

Run with ``make test-stress`` (or ``pytest --run-slow``); prints p50 and p99 over 30 failing tasks.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterator

import pytest
import taskcluster

from cairn.domain.timestamps import parse_time
from tests.acceptance.notify_fakes import SmtpSink
from tests.acceptance.queue_helpers import claim_one, task_definition
from tests.conftest import free_port

TASKS = 30


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    sink = SmtpSink(free_port())
    sink.start()
    yield sink
    sink.stop()


@pytest.fixture
def settings_overrides(smtp):
    return {"smtp_url": smtp.url}


@pytest.mark.slow
def test_delay_from_resolution_to_mail(server, smtp, database_url):
    queue = server.client("queue")
    resolved: dict[str, float] = {}
    for i in range(TASKS):
        task_id = taskcluster.slugId()
        queue.createTask(task_id, task_definition(routes=[f"notify.email.u{i}@example.org.on-failed"]))
        claim = claim_one(queue)
        status = queue.reportFailed(task_id, str(claim["runId"]))["status"]
        resolved[f"u{i}@example.org"] = parse_time(status["runs"][-1]["resolved"]).timestamp()
    mails = smtp.wait_for(TASKS, timeout=60)
    assert len(mails) == TASKS
    delays = sorted((m.arrived - resolved[m.recipients[0]]) * 1000 for m in mails)
    p50 = statistics.median(delays)
    p99 = delays[min(len(delays) - 1, round(0.99 * (len(delays) - 1)))]
    backend = "postgres" if database_url.startswith("postgres") else "sqlite"
    print(f"\nnotify mail delay on {backend} over {TASKS} tasks: p50 {p50:.0f} ms, p99 {p99:.0f} ms, max {delays[-1]:.0f} ms")
    assert p99 < 2000
