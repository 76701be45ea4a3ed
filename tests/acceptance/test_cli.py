"""The ``cairn`` command line against a live server: tasks, groups, credentials, administration, history.

Most commands run in this process through click's runner, with the same
environment a user would set: TASKCLUSTER_* for the API commands, CAIRN_*
for those that read the log (history, show --at, replay). A few run as a
real ``python -m cairn.cli`` process, to see exactly what a shell sees.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import taskcluster
import yaml
from click.testing import CliRunner, Result

from cairn.cli import main
from tests.acceptance.queue_helpers import TASK_QUEUE, claim_one, task_definition
from tests.conftest import ROOT_TOKEN, SECRET_KEY, LiveServer

Q = "exchange/taskcluster-queue/v1/"


@pytest.fixture
def server(runtime: Any) -> Iterator[LiveServer]:
    """A live server told its own root URL, as downloading a stored log needs."""
    live = LiveServer(runtime)
    runtime.settings = dataclasses.replace(runtime.settings, root_url=live.root_url)
    live.server.config.timeout_graceful_shutdown = 0.5
    live.start()
    yield live
    live.stop()


def cli_env(server: LiveServer, **extra: str) -> dict[str, str | None]:
    settings = server.runtime.settings
    env: dict[str, str | None] = {
        "TASKCLUSTER_ROOT_URL": server.root_url,
        "TASKCLUSTER_CLIENT_ID": "static/root",
        "TASKCLUSTER_ACCESS_TOKEN": ROOT_TOKEN,
        "TASKCLUSTER_CERTIFICATE": None,
        "CAIRN_DATABASE_URL": settings.database_url,
        "CAIRN_SECRET_KEY": SECRET_KEY,
        "CAIRN_DATA_DIR": settings.data_dir,
        "CAIRN_AMQP_URL": None,
        "CAIRN_ROOT_ACCESS_TOKEN": None,
    }
    env.update(extra)
    return env


class Cli:
    def __init__(self, env: dict[str, str | None]):
        self.env = env

    def run(self, *args: str, input: str | None = None, ok: bool = True) -> Result:
        result = CliRunner(env=self.env).invoke(main, list(args), input=input, catch_exceptions=False)
        if ok:
            assert result.exit_code == 0, f"cairn {' '.join(args)} failed: {result.stderr}"
        return result

    def json(self, *args: str, input: str | None = None) -> Any:
        return json.loads(self.run(*args, "--json", input=input).stdout)

    def error(self, *args: str) -> str:
        """The one error line of a command that must fail."""
        result = self.run(*args, ok=False)
        assert result.exit_code == 1, result.stdout
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
        return lines[0]


@pytest.fixture
def cli(server: LiveServer) -> Cli:
    return Cli(cli_env(server))


def run_process(server: LiveServer, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TASKCLUSTER_", "CAIRN_"))}
    env.update({k: v for k, v in cli_env(server).items() if v is not None})
    return subprocess.run(
        [sys.executable, "-m", "cairn.cli", *args], input=input, env=env, capture_output=True, text=True, timeout=60
    )


TASK_YAML = """\
taskQueueId: {queue}
payload:
  command: [echo, hello]
  env: {{API_TOKEN: s3cret-in-the-payload}}
metadata:
  name: from yaml
  description: a task written in YAML
  owner: tests@example.com
  source: https://example.com/cairn/tests
expires: {expires}
"""


def task_yaml(queue: str = TASK_QUEUE) -> str:
    # An unquoted YAML date: it must reach the API as Taskcluster's date string.
    expires = taskcluster.stringDate(taskcluster.fromNow("30 days"))
    return TASK_YAML.format(queue=queue, expires=expires)


def test_tasks_are_created_from_yaml_and_stdin_then_inspected_cancelled_and_rerun(cli, tmp_path):
    path = tmp_path / "task.yml"
    path.write_text(task_yaml())

    created = cli.json("task", "create", str(path))["status"]
    assert created["state"] == "pending" and created["taskQueueId"] == TASK_QUEUE
    task_id = slugid = taskcluster.slugId()
    line = cli.run("task", "create", str(path), "--task-id", slugid).stdout
    assert line.split() == [slugid, "pending"]

    definition = cli.json("task", "def", task_id)
    assert definition["metadata"]["name"] == "from yaml"
    assert definition["expires"].endswith("Z")
    deadline_in = taskcluster.fromNowJSON("0 seconds")
    assert definition["created"] <= deadline_in < definition["deadline"]
    assert definition["deadline"] <= taskcluster.stringDate(taskcluster.fromNow("1 day"))
    assert yaml.safe_load(cli.run("task", "def", task_id).stdout)["metadata"] == definition["metadata"]

    from_stdin = cli.json("task", "create", "-", input=json.dumps(task_definition(metadata={
        **task_definition()["metadata"], "name": "from stdin"})))["status"]
    assert cli.json("task", "def", from_stdin["taskId"])["metadata"]["name"] == "from stdin"

    status = cli.json("task", "status", task_id)["status"]
    assert (status["taskId"], status["state"], len(status["runs"])) == (task_id, "pending", 1)
    assert "pending" in cli.run("task", "status", task_id).stdout

    assert cli.json("task", "cancel", task_id)["status"]["state"] == "exception"
    rerun = cli.json("task", "rerun", task_id)["status"]
    assert rerun["state"] == "pending"
    assert [(r["state"], r["reasonCreated"]) for r in rerun["runs"]] == [
        ("exception", "scheduled"), ("pending", "rerun")]
    assert cli.run("task", "cancel", task_id).stdout.split() == [task_id, "exception"]


def test_task_and_group_output_links_to_their_pages_in_the_web_ui(cli, server, tmp_path):
    path = tmp_path / "task.yml"
    path.write_text(task_yaml())
    task_id = taskcluster.slugId()
    created = cli.run("task", "create", str(path), "--task-id", task_id)
    assert created.stdout.split() == [task_id, "pending"]  # stdout stays parseable
    page = f"{server.root_url}/tasks/{task_id}"
    assert created.stderr.strip() == page
    assert httpx.get(page).headers["content-type"].startswith("text/html")  # the web UI, not the API
    assert page in cli.run("task", "status", task_id).stdout
    assert f"{server.root_url}/tasks/groups/{task_id}" in cli.run("group", "status", task_id, "--once").stdout
    assert "url" not in cli.json("task", "status", task_id)


def test_a_real_process_reads_a_task_from_stdin_and_fails_in_one_clear_line(cli, server):
    process = run_process(server, "task", "create", "-", input=task_yaml())
    assert process.returncode == 0, process.stderr
    task_id, state = process.stdout.split()
    assert state == "pending"
    assert server.client("queue").task(task_id)["metadata"]["name"] == "from yaml"

    process = run_process(server, "task", "status", "not-a-task-id")
    assert process.returncode == 1
    assert "Traceback" not in process.stderr
    lines = process.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: InvalidRequestArguments: "), process.stderr

    unknown = taskcluster.slugId()
    assert cli.error("task", "status", unknown).startswith("Error: ResourceNotFound: ")
    assert cli.error("task", "log", unknown).startswith("Error: ResourceNotFound: ")
    assert cli.error("history", "task", unknown) == f"Error: no task {unknown} was ever recorded"
    no_server = Cli(cli_env(server, TASKCLUSTER_ROOT_URL="http://127.0.0.1:9"))
    assert no_server.error("task", "status", unknown).startswith("Error: cannot reach the server")


def test_group_status_shows_each_task_and_refreshes_until_all_are_resolved(cli, server):
    queue = server.client("queue")
    group_id = taskcluster.slugId()
    task_ids = sorted(taskcluster.slugId() for _ in range(2))
    for task_id in task_ids:
        queue.createTask(task_id, task_definition(taskGroupId=group_id))

    once = cli.json("group", "status", group_id, "--once")
    assert [(t["status"]["taskId"], t["status"]["state"]) for t in once["tasks"]] == [
        (task_id, "pending") for task_id in task_ids]
    table = cli.run("group", "status", group_id, "--once").stdout
    assert all(task_id in table for task_id in task_ids) and "0/2 resolved" in table

    def resolve_both() -> None:
        for _ in task_ids:
            claim = claim_one(queue)
            time.sleep(0.3)
            queue.reportCompleted(claim["status"]["taskId"], str(claim["runId"]))

    worker = threading.Thread(target=resolve_both)
    worker.start()
    started = time.monotonic()
    final = cli.run("group", "status", group_id, "--interval", "0.2").stdout
    worker.join()
    assert time.monotonic() - started < 15
    assert "2/2 resolved" in final and "2 completed" in final
    assert {t["status"]["state"] for t in cli.json("group", "status", group_id)["tasks"]} == {"completed"}


class WorkerProcess:
    def __init__(self, server: LiveServer, directory: Path, task_queue_id: str):
        self.log_path = directory / "worker.stderr"
        env = dict(os.environ)
        env.update({k: v for k, v in cli_env(server).items() if v is not None})
        command = [sys.executable, "-m", "cairn.cli", "worker", "--task-queue", task_queue_id,
                   "--worker-group", "tests", "--worker-id", "cli", "--work-dir", str(directory / "work")]
        with self.log_path.open("wb") as out:
            self.process = subprocess.Popen(command, env=env, stdout=out, stderr=out)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def test_task_log_follows_a_running_task_then_reads_the_stored_log(cli, server, tmp_path):
    task_queue_id = "cairn-cli/log-worker"
    worker = WorkerProcess(server, tmp_path, task_queue_id)
    try:
        path = tmp_path / "slow.yml"
        path.write_text(yaml.safe_dump(task_definition(
            taskQueueId=task_queue_id,
            payload={"command": "echo first line; sleep 1; echo second line"},
        )))
        task_id = cli.run("task", "create", str(path)).stdout.split()[0]
        followed = cli.run("task", "log", task_id, "-f").stdout
        assert "first line" in followed and "second line" in followed
        deadline = time.monotonic() + 15
        while server.client("queue").status(task_id)["status"]["state"] != "completed":
            assert time.monotonic() < deadline, worker.log_path.read_text()
            time.sleep(0.1)
    finally:
        worker.stop()
    stored = cli.run("task", "log", task_id).stdout
    assert "first line\nsecond line\n" in stored
    names = {a["name"]: a["storageType"] for a in cli.json("task", "artifacts", task_id)["artifacts"]}
    assert names == {"public/logs/live.log": "link", "public/logs/live_backing.log": "object"}
    assert "public/logs/live_backing.log" in cli.run("task", "artifacts", task_id).stdout


def sourced(exports: str, tmp_path: Path) -> dict[str, str]:
    """What a shell has after sourcing ``exports``."""
    script = tmp_path / "exports.sh"
    script.write_text(exports)
    shown = subprocess.run(
        ["bash", "-c", f"source {shlex.quote(str(script))} && env -0"], capture_output=True, text=True, check=True,
        env={"PATH": os.environ.get("PATH", "")},
    ).stdout
    variables = dict(item.split("=", 1) for item in shown.split("\0") if "=" in item)
    return {k: v for k, v in variables.items() if k.startswith("TASKCLUSTER_")}


def granted(auth: Any) -> list[str]:
    """The scopes a client's credentials have, besides what anyone has."""
    return [s for s in auth.currentScopes()["scopes"] if s != "assume:anonymous"]


def test_signin_prints_exports_that_work_as_credentials(cli, server, tmp_path, monkeypatch):
    exports = cli.run("signin", "--scope", "auth:current-scopes", "--scope", "queue:status:*", "--expires", "10m").stdout
    assert all(line.startswith("export TASKCLUSTER_") for line in exports.splitlines())
    variables = sourced(exports, tmp_path)
    assert set(variables) == {"TASKCLUSTER_ROOT_URL", "TASKCLUSTER_CLIENT_ID", "TASKCLUSTER_ACCESS_TOKEN",
                              "TASKCLUSTER_CERTIFICATE"}
    assert variables["TASKCLUSTER_ACCESS_TOKEN"] != ROOT_TOKEN
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    auth = taskcluster.Auth({**taskcluster.optionsFromEnvironment(), "maxRetries": 0})
    assert granted(auth) == ["auth:current-scopes", "queue:status:*"]
    with pytest.raises(taskcluster.TaskclusterRestFailure) as refused:
        auth.listClients()
    assert refused.value.body["code"] == "InsufficientScopes"
    # Temporary credentials do not make more of themselves.
    assert "temporary" in Cli(cli_env(server, **variables)).error("signin")

    named = cli.json("signin", "--name", "test/temporary", "--scope", "auth:current-scopes")
    options = {"rootUrl": server.root_url, "maxRetries": 0,
               "credentials": {k: named[k] for k in ("clientId", "accessToken", "certificate")}}
    assert named["clientId"] == "test/temporary"
    assert granted(taskcluster.Auth(options)) == ["auth:current-scopes"]

    limited = cli.json("client", "create", "test/limited", "--scope", "auth:current-scopes")
    as_limited = Cli(cli_env(server, TASKCLUSTER_CLIENT_ID="test/limited",
                             TASKCLUSTER_ACCESS_TOKEN=limited["accessToken"]))
    assert as_limited.error("signin", "--scope", "queue:create-task:*") == (
        "Error: test/limited cannot grant what it does not hold: queue:create-task:*")


def test_clients_are_administered_and_their_history_never_shows_a_token(cli, server):
    created = cli.json("client", "create", "test/ci", "--description", "CI", "--scope", "auth:current-scopes",
                       "--expires", "1 day")
    first_token = created["accessToken"]
    assert created["scopes"] == ["auth:current-scopes"]

    def scopes_of(token: str) -> list[str]:
        return granted(server.client("auth", client_id="test/ci", access_token=token))

    assert scopes_of(first_token) == ["auth:current-scopes"]
    updated = cli.json("client", "update", "test/ci", "--add-scope", "queue:status:*", "--description", "CI v2")
    assert updated["scopes"] == ["auth:current-scopes", "queue:status:*"] and updated["description"] == "CI v2"
    assert cli.json("client", "disable", "test/ci")["disabled"] is True
    assert cli.json("client", "enable", "test/ci")["disabled"] is False
    second_token = cli.json("client", "reset-token", "test/ci")["accessToken"]
    assert second_token != first_token and len(scopes_of(second_token)) == 2
    with pytest.raises(taskcluster.TaskclusterAuthFailure):
        scopes_of(first_token)
    assert "test/ci" in [c["clientId"] for c in cli.json("client", "list", "--prefix", "test/")["clients"]]
    assert "CI v2" in cli.run("client", "show", "test/ci").stdout
    assert cli.json("client", "delete", "test/ci") == {"clientId": "test/ci", "deleted": True}
    assert cli.error("client", "show", "test/ci").startswith("Error: ResourceNotFound: ")

    events = cli.json("history", "client", "test/ci")["events"]
    assert [(e["type"], e["clientId"]) for e in events] == [
        ("ClientCreated", "static/root"),
        ("ClientDescriptionChanged", "static/root"),
        ("ClientScopesChanged", "static/root"),
        ("ClientDisabled", "static/root"),
        ("ClientEnabled", "static/root"),
        ("ClientAccessTokenReset", "static/root"),
        ("ClientDeleted", "static/root"),
    ]
    shown = cli.run("history", "client", "test/ci", "--json").stdout + cli.run("history", "client", "test/ci").stdout
    shown += cli.run("show", "client", "test/ci", "--at", "1", "--json").stdout
    for token in (first_token, second_token):
        assert token not in shown
    assert "sealed" not in shown and "token" not in shown.replace("ClientAccessTokenReset", "")

    at_creation = cli.json("show", "client", "test/ci", "--at", "1")
    assert (at_creation["description"], at_creation["scopes"], at_creation["deleted"]) == (
        "CI", ["auth:current-scopes"], False)
    assert cli.json("show", "client", "test/ci")["deleted"] is True


def test_roles_are_created_shown_changed_and_remembered(cli):
    role = cli.json("role", "create", "repo:example/*", "--description", "a repository", "--scope", "queue:route:x")
    assert role["scopes"] == ["queue:route:x"]
    shown = cli.json("role", "show", "repo:example/*")
    assert shown["roleId"] == "repo:example/*" and "assume:repo:example/*" in shown["expandedScopes"]
    assert "queue:route:x" in cli.run("role", "show", "repo:example/*").stdout
    cli.run("role", "update", "repo:example/*", "--scope", "queue:route:y")
    assert [r["roleId"] for r in cli.json("role", "list")["roles"]] == ["repo:example/*"]

    assert [e["type"] for e in cli.json("history", "role", "repo:example/*")["events"]] == [
        "RoleCreated", "RoleScopesChanged"]
    assert cli.json("show", "role", "repo:example/*", "--at", "1")["scopes"] == ["queue:route:x"]
    assert cli.json("show", "role", "repo:example/*")["scopes"] == ["queue:route:y"]
    cli.run("role", "delete", "repo:example/*")
    assert cli.error("role", "show", "repo:example/*").startswith("Error: ResourceNotFound: ")


def _run_a_task(cli: Cli, server: LiveServer, tmp_path: Path) -> str:
    path = tmp_path / "task.yml"
    path.write_text(task_yaml())
    task_id = cli.run("task", "create", str(path)).stdout.split()[0]
    queue = server.client("queue")
    time.sleep(0.01)  # the claim lands a clear millisecond after the creation
    claim = claim_one(queue)
    worker_queue = taskcluster.Queue({"rootUrl": server.root_url, "credentials": claim["credentials"], "maxRetries": 0})
    worker_queue.reportCompleted(task_id, str(claim["runId"]))
    return task_id


def test_a_task_s_history_in_order_its_state_at_an_earlier_time_and_its_replayed_messages(cli, server, tmp_path):
    task_id = _run_a_task(cli, server, tmp_path)

    events = cli.json("history", "task", task_id)["events"]
    worker_client = f"task-client/{task_id}/0/on/tests/w1/until/"
    assert [(e["version"], e["type"]) for e in events] == [
        (1, "TaskDefined"), (2, "TaskRunPending"), (3, "TaskRunClaimed"), (4, "TaskRunResolved")]
    assert [e["clientId"] for e in events[:3]] == ["static/root"] * 3
    assert events[3]["clientId"].startswith(worker_client)
    assert [e["position"] for e in events] == sorted(e["position"] for e in events)
    assert events[3]["data"]["state"] == "completed"

    table = cli.run("history", "task", task_id).stdout
    for e in events:
        assert e["type"] in table
    for shown in (table, cli.run("history", "task", task_id, "--full").stdout, json.dumps(events)):
        assert "s3cret-in-the-payload" not in shown and "API_TOKEN" not in shown

    pending = cli.json("show", "task", task_id, "--at", events[1]["time"])
    assert pending["status"]["state"] == "pending" and pending["asOf"]["version"] == 2
    assert pending["task"]["metadata"]["name"] == "from yaml"
    assert "s3cret-in-the-payload" not in json.dumps(pending)
    assert cli.json("show", "task", task_id, "--at", "3")["status"]["state"] == "running"
    assert cli.json("show", "task", task_id)["status"]["state"] == "completed"
    text = cli.run("show", "task", task_id, "--at", events[1]["time"]).stdout
    assert text.splitlines()[1].split() == ["state", "pending"]
    assert "did not exist yet" in cli.error("show", "task", task_id, "--at", "2001-01-01T00:00:00Z")
    assert "versions 1 to 4" in cli.error("show", "task", task_id, "--at", "9")

    group = cli.json("history", "group", task_id)["events"]
    assert [e["type"] for e in group if e.get("taskId") == task_id] == [e["type"] for e in events]
    assert {e["type"] for e in group if "taskId" not in e} == {"TaskGroupDefined", "TaskGroupResolved"}

    # Replaying the task's range of the log re-derives its Pulse messages.
    first, last = events[0]["position"], events[-1]["position"]
    lines = cli.run("replay", "--from", str(first), "--to", str(last)).stdout.splitlines()
    messages = [json.loads(line) for line in lines]
    mine = [m for m in messages if m["routingKey"].startswith(f"primary.{task_id}.")]
    assert [m["exchange"] for m in mine] == [
        Q + "task-defined", Q + "task-pending", Q + "task-running", Q + "task-completed"]
    assert [m["position"] for m in mine] == [e["position"] for e in events]
    assert mine[3]["routingKey"] == f"primary.{task_id}.0.tests.w1.cairn-test.worker.-.{task_id}._"
    assert mine[3]["payload"]["status"]["state"] == "completed"
    assert all(first <= m["position"] <= last for m in messages)
    assert len({m["messageId"] for m in messages}) == len(messages)
    assert set(messages[0]) == {"exchange", "routingKey", "cc", "messageId", "payload", "position"}

    # The same range again gives the same messages, ids and all.
    assert cli.run("replay", "--from", str(first), "--to", str(last)).stdout.splitlines() == lines
    only_last = [json.loads(line) for line in cli.run("replay", "--from", str(last), "--to", str(last)).stdout.splitlines()]
    assert only_last == [m for m in messages if m["position"] == last]


def test_replay_publishes_to_amqp(server, tmp_path, amqp_url):
    from tests.integration.amqp_listener import AmqpListener

    cli = Cli(cli_env(server, CAIRN_AMQP_URL=amqp_url))
    task_id = _run_a_task(cli, server, tmp_path)
    events = cli.json("history", "task", task_id)["events"]
    bindings = [(Q + name, f"primary.{task_id}.#") for name in ("task-defined", "task-pending", "task-completed")]
    with AmqpListener(amqp_url, bindings) as listener:
        result = cli.run("replay", "--from", str(events[0]["position"]), "--to", str(events[-1]["position"]), "--publish")
        assert result.stdout == ""
        received = listener.wait_for(3)
    assert [r.exchange for r in received] == [Q + "task-defined", Q + "task-pending", Q + "task-completed"]
    assert "published" in result.stderr
    assert "nowhere to publish" in Cli(cli_env(server)).error("replay", "--publish")
