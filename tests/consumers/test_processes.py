"""The process table: what `cairn serve` runs, `cairn run NAME` alone, and which processes take a lead."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import taskcluster
from click.testing import CliRunner

from cairn.cli import main
from cairn.consumers.reaper import Reaper
from cairn.domain.aggregate import acting_as
from cairn.domain.timestamps import iso, utcnow
from cairn.processes import PROCESSES
from tests.acceptance.queue_helpers import task_definition
from tests.conftest import SECRET_KEY
from tests.consumers.poisoning import eventually, run_tasks


def test_the_table_names_every_process_and_its_lead():
    assert {p.name: p.leader for p in PROCESSES} == {
        "web": False,
        "event-stream": False,
        "pulse-publisher": True,
        "task-indexer": True,
        "runs-analytics": True,
        "reaper": True,
        "built-in-workers": True,
        "hook-scheduler": True,
        "hook-listener": True,
        "hook-amqp-listener": True,
        "task-notifier": True,
        "notify-delivery": True,
        "github-builds": True,
        "github-reporter": True,
        "github-requests": True,
    }
    assert [p.name for p in PROCESSES if p.with_web] == ["event-stream"]


def test_a_runtime_builds_every_process_it_has_settings_for(runtime):
    # No CAIRN_AMQP_URL in the tests' settings: nowhere to publish, so no publisher nor AMQP bindings;
    # no e-mail, Slack or Matrix, so no notification delivery; no GitHub App, so nothing acts on GitHub.
    assert set(runtime.processes.runners) == {
        "event-stream", "task-indexer", "runs-analytics", "reaper", "built-in-workers", "hook-scheduler",
        "hook-listener", "task-notifier",
    }
    assert runtime.processes["task-indexer"] is runtime.task_indexer
    assert runtime.processes["reaper"] is runtime.reaper
    runtime.processes.select(["web"])
    assert runtime.processes.selected == ["web", "event-stream"]
    with pytest.raises(ValueError, match="no process indexer"):
        runtime.processes.select(["indexer"])


def run_command(*args: str, **env: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), env={"CAIRN_AMQP_URL": None, **env})
    return result.exit_code, result.output


def test_cairn_run_refuses_what_cannot_run_alone(tmp_path):
    env = {"CAIRN_DATABASE_URL": f"sqlite:///{tmp_path / 'c.db'}", "CAIRN_SECRET_KEY": SECRET_KEY}
    code, output = run_command("run", "event-stream", **env)
    assert code == 1 and "runs with `cairn run web`" in output
    code, output = run_command("run", "pulse-publisher", **env)
    assert code == 1 and "nowhere to publish" in output
    code, output = run_command("pulse-publisher", **env)
    assert code == 1 and "nowhere to publish" in output
    code, output = run_command("run", "--help")
    assert code == 0 and all(p.name in output for p in PROCESSES)


def test_cairn_run_task_indexer_indexes_alone_and_stops_on_sigterm(runtime):
    env = dict(os.environ)
    env.update(
        CAIRN_DATABASE_URL=runtime.settings.database_url,
        CAIRN_SECRET_KEY=SECRET_KEY,
        CAIRN_DATA_DIR=runtime.settings.data_dir,
        CAIRN_LOG_LEVEL="warning",
    )
    env.pop("CAIRN_AMQP_URL", None)
    process = subprocess.Popen([sys.executable, "-m", "cairn.cli", "run", "task-indexer"], env=env)
    try:
        (task_id,) = run_tasks(runtime, 1, routes=["index.alone.latest"])
        eventually(
            lambda: runtime.index_reads.entry("alone.latest", iso(utcnow())) is not None, 30, "the indexer process"
        )
        assert runtime.index_reads.entry("alone.latest", iso(utcnow()))["taskId"] == task_id
        # It ran the indexer only: the analytics view was not folded.
        assert runtime.view_followers[0].position() == 0
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0


def test_the_reaper_takes_a_lead(runtime):
    settings = runtime.settings
    conninfo = settings.database_url if settings.backend == "postgres" else None
    first = Reaper(runtime.queue, runtime.queue_reads, 1.0, conninfo)
    second = Reaper(runtime.queue, runtime.queue_reads, 1.0, conninfo)
    try:
        assert first.leadership.held()
        # On PostgreSQL one reaper leads at a time; with SQLite there is one process and nothing to elect.
        assert second.leadership.held() is (conninfo is None)
        first.leadership.release()
        if conninfo is not None:
            eventually(second.leadership.held, 10, "the stand-by reaper to lead")
    finally:
        first.leadership.release()
        second.leadership.release()


class TestReaping:
    @pytest.fixture
    def settings_overrides(self):
        return {"claim_timeout": 1}

    def test_one_failing_command_does_not_hold_back_the_rest(self, runtime, monkeypatch):
        queue = runtime.queue
        with acting_as("tests"):
            ids = []
            for _ in range(3):
                task_id = taskcluster.slugId()
                queue.define_task(task_id, task_definition(taskQueueId="cairn-test/reap"), utcnow())
                queue.claim_work("cairn-test/reap", "tests", "w1", 1, utcnow())
                ids.append(task_id)
        time.sleep(1.2)
        bad = ids[1]
        expire_claim = queue.expire_claim

        def failing(task_id, run_id, now):
            if task_id == bad:
                raise RuntimeError("cannot expire this one")
            return expire_claim(task_id, run_id, now)

        monkeypatch.setattr(queue, "expire_claim", failing)
        assert runtime.reaper.reap_once() == 2
        with acting_as("tests"):
            states = [queue.task(t).status()["runs"][0]["state"] for t in ids]
        assert states == ["exception", "running", "exception"]
