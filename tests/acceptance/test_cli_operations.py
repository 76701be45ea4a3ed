"""The command line as scripts and operators meet it: exit codes, reasons, --json everywhere, no stray state."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import click
import httpx
import taskcluster

from cairn.cli import main
from tests.acceptance import test_cli
from tests.acceptance.queue_helpers import claim_one, task_definition
from tests.acceptance.storage_helpers import in_one_day
from tests.conftest import ROOT_TOKEN

Cli, cli_env = test_cli.Cli, test_cli.cli_env
server, cli = test_cli.server, test_cli.cli  # the live server told its own root URL, and the CLI runner

#: Commands that run until stopped, printing logs rather than results.
DAEMONS = {"serve", "worker", "pulse-publisher", "run"}
#: Commands that are a terminal session, not output for scripts.
INTERACTIVE = {"task shell"}


def _resolved_task(server, state: str, log: bytes | None = None) -> str:
    """A task whose one run resolved as ``state``, with ``log`` as its live log if given."""
    queue = server.client("queue")
    task_id = taskcluster.slugId()
    queue.createTask(task_id, task_definition(taskQueueId="cairn-cli/ops"))
    claim = claim_one(queue, "cairn-cli/ops")
    worker = taskcluster.Queue({"rootUrl": server.root_url, "credentials": claim["credentials"], "maxRetries": 0})
    if log is not None:
        created = worker.createArtifact(task_id, 0, "public/logs/live.log", {
            "storageType": "s3", "expires": in_one_day(), "contentType": "text/plain"})
        assert httpx.put(created["putUrl"], content=log, headers={"Content-Type": "text/plain"}).status_code == 200
    {"completed": worker.reportCompleted, "failed": worker.reportFailed}[state](task_id, 0)
    return task_id


def test_task_log_follow_exits_non_zero_unless_the_task_completed(cli, server):
    failed = _resolved_task(server, "failed")
    result = cli.run("task", "log", "-f", failed, ok=False)
    assert result.exit_code == 1
    assert f"task {failed} resolved as failed" in result.stderr
    completed = _resolved_task(server, "completed", b"all good\n")
    assert cli.run("task", "log", "-f", completed).stdout == "all good\n"


def test_task_log_json(cli, server):
    task_id = _resolved_task(server, "completed", b"line one\nline two\n")
    for args in (("task", "log", task_id), ("task", "log", "-f", task_id)):
        document = cli.json(*args)
        assert document == {"taskId": task_id, "state": "completed",
                            "runs": [{"runId": 0, "log": "line one\nline two\n"}]}


def test_task_create_of_an_invalid_definition_prints_the_servers_reason(cli, tmp_path):
    definition = task_definition()
    del definition["metadata"]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(definition))
    line = cli.error("task", "create", str(path))
    assert line.startswith("Error: InputValidationError: ")
    assert "'metadata' is a required property" in line


def _cairn_elsewhere(server, directory: Path, *args: str, api: bool = True) -> subprocess.CompletedProcess[str]:
    """`cairn ...` run from ``directory``, with no CAIRN_* settings (and the API's, if ``api``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TASKCLUSTER_", "CAIRN_"))}
    if api:
        env.update(TASKCLUSTER_ROOT_URL=server.root_url, TASKCLUSTER_CLIENT_ID="static/root",
                   TASKCLUSTER_ACCESS_TOKEN=ROOT_TOKEN)
    return subprocess.run([sys.executable, "-m", "cairn.cli", *args], cwd=directory, env=env,
                          capture_output=True, text=True, timeout=60)


def test_from_another_directory_nothing_is_created_and_history_reads_the_api(server, tmp_path):
    task_id = _resolved_task(server, "completed")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    history = _cairn_elsewhere(server, elsewhere, "history", "task", task_id, "--json")
    assert history.returncode == 0, history.stderr
    events = json.loads(history.stdout)["events"]
    assert [e["type"] for e in events] == ["TaskDefined", "TaskRunPending", "TaskRunClaimed", "TaskRunResolved"]
    group = _cairn_elsewhere(server, elsewhere, "history", "group", task_id, "--json")
    assert {e.get("taskId") for e in json.loads(group.stdout)["events"]} == {task_id, None}
    assert "TaskDefined" in _cairn_elsewhere(server, elsewhere, "history", "task", task_id).stdout
    missing = _cairn_elsewhere(server, elsewhere, "history", "task", taskcluster.slugId())
    assert missing.returncode == 1 and "was ever recorded" in missing.stderr

    for args in (("projections", "list"), ("projections", "verify"), ("export", "runs"),
                 ("show", "task", task_id), ("replay",), ("history", "task", task_id)):
        done = _cairn_elsewhere(server, elsewhere, *args, api=args[0] != "history")
        assert done.returncode == 1, (args, done.stdout, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: there is no Cairn database at .cairn/cairn.db"), (
            args, done.stderr)
        assert done.stdout == ""
    assert list(elsewhere.iterdir()) == []


def test_operator_commands_print_json(cli, server):
    task_id = _resolved_task(server, "completed")
    # The runs view trails the log (a read-side follower): wait until it has folded the task's events.
    deadline = time.monotonic() + 30
    while True:
        listed = cli.json("projections", "list")
        runs = next(p for p in listed["projections"] if p["name"] == "runs")
        if runs["position"] == listed["head"] or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert listed["head"] > 0 and {p["name"] for p in listed["projections"]} >= {"queue", "runs"}
    verified = cli.json("projections", "verify")
    assert verified["match"] is True and verified["differences"] == []
    rebuilt = cli.json("projections", "rebuild", "runs")
    assert rebuilt["rebuilt"] == ["runs"] and rebuilt["events"] > 0
    runs = cli.json("export", "runs")
    assert [(r["taskId"], r["state"]) for r in runs["rows"]] == [(task_id, "completed")]
    replayed = cli.json("replay")
    assert replayed["from"] == 1 and replayed["messages"]
    assert {m["routingKey"].split(".")[1] for m in replayed["messages"]} >= {task_id}


def _commands(group: click.Group, prefix: tuple[str, ...] = ()):
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _commands(command, (*prefix, name))
        else:
            yield (*prefix, name), command


def test_every_command_but_the_long_running_ones_takes_json():
    missing = [" ".join(path) for path, command in _commands(main)
               if path[0] not in DAEMONS and " ".join(path) not in INTERACTIVE
               and "--json" not in {o for p in command.params for o in p.opts}]
    assert missing == []


def test_a_closed_pipe_ends_a_command_quietly(cli, server, tmp_path):
    task_id = _resolved_task(server, "completed")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TASKCLUSTER_", "CAIRN_"))}
    env.update({k: v for k, v in cli_env(server).items() if v is not None})
    # As `cairn show ... | head` once head has gone: the reader end is closed before anything is written.
    process = subprocess.Popen([sys.executable, "-m", "cairn.cli", "show", "task", task_id],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    process.stdout.close()
    stderr = process.stderr.read()
    process.wait(60)
    assert process.returncode == 141
    assert "Error" not in stderr and "Broken pipe" not in stderr and "Traceback" not in stderr, stderr
