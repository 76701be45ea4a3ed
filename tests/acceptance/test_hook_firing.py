"""Hooks that fire by themselves: on a schedule, with the task run by `cairn worker`, and on bound messages."""

from __future__ import annotations

import datetime as dt
import sys
import time

import taskcluster

from tests.acceptance.hooks_helpers import QUEUE_SCOPES, hook_definition, hook_task, role_for_hook
from tests.acceptance.test_hooks import fires
from tests.acceptance.test_worker import (  # noqa: F401  (fixtures)
    resolved,
    server,
    settings_overrides,
    start_worker,
    task_log,
    wait_for,
)


def once_at(moment: dt.datetime) -> str:
    """A cron pattern (seconds first) that gives ``moment`` and no other time this year."""
    return f"{moment.second} {moment.minute} {moment.hour} {moment.day} {moment.month} *"


def test_a_schedule_due_in_a_few_seconds_fires_once_and_its_task_runs(server, start_worker):
    hooks, queue = server.client("hooks"), server.client("queue")
    role_for_hook(server, "ci", "tick", QUEUE_SCOPES)
    due = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=3)).replace(microsecond=0)
    template = hook_task(payload={"command": ["echo", "fired at ${now}"]})
    hooks.createHook("ci", "tick", hook_definition(task=template, schedule=[once_at(due)]))
    due_text = due.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert hooks.getHookStatus("ci", "tick")["nextScheduledDate"] == due_text
    start_worker()

    [fire] = wait_for(lambda: fires(hooks, "ci", "tick"), timeout=15, what="the scheduled fire")
    assert fire["firedBy"] == "schedule" and fire["result"] == "success"
    task = queue.task(fire["taskId"])
    assert task["created"] == due_text
    assert task["payload"]["command"] == ["echo", f"fired at {due_text}"]
    assert resolved(queue, fire["taskId"])["state"] == "completed"
    # Fired once: the next time the pattern gives is a year away.
    time.sleep(1.5)
    assert len(fires(hooks, "ci", "tick")) == 1
    assert hooks.getHookStatus("ci", "tick")["nextScheduledDate"] > due_text


def test_a_binding_fires_for_each_matching_completion_and_only_then(server, start_worker):
    hooks, queue = server.client("hooks"), server.client("queue")
    role_for_hook(server, "ci", "after-build", QUEUE_SCOPES)
    binding = {"exchange": "exchange/taskcluster-queue/v1/task-completed", "routingKeyPattern": "route.builds.#"}
    template = hook_task(payload={"command": ["echo", "${payload.status.taskId}"],
                                  "env": {"EXCHANGE": "${exchange}", "KEY": "${routingKey}"}})
    hooks.createHook("ci", "after-build", hook_definition(task=template, bindings=[binding],
                                                          triggerSchema={"type": "object"}))
    start_worker(capacity=3)

    def run(route: str, command: str) -> str:
        task_id = taskcluster.slugId()
        queue.createTask(task_id, {**hook_task(payload={"command": ["sh", "-c", command]}, routes=[route]),
                                   "created": _now(), "deadline": _later()})
        return task_id

    matching = run("builds.linux", "true")
    other_route = run("tests.linux", "true")
    failing = run("builds.mac", "false")
    for task_id in (matching, other_route, failing):
        resolved(queue, task_id)

    [fire] = wait_for(lambda: fires(hooks, "ci", "after-build"), timeout=15, what="the bound fire")
    assert fire["firedBy"] == "pulseMessage" and fire["result"] == "success"
    task = queue.task(fire["taskId"])
    assert task["payload"]["command"] == ["echo", matching]
    assert task["payload"]["env"]["EXCHANGE"] == binding["exchange"]
    assert task["payload"]["env"]["KEY"].startswith(f"primary.{matching}.0.")
    time.sleep(1.0)
    # The hook's own task completes too, without the route: still one fire.
    resolved(queue, fire["taskId"])
    time.sleep(0.5)
    assert len(fires(hooks, "ci", "after-build")) == 1


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _later() -> str:
    moment = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_a_task_reads_through_the_proxy_the_secrets_its_scopes_allow_and_no_other(server, start_worker):
    queue, secrets = server.client("queue"), server.client("secrets")
    expires = taskcluster.stringDate(taskcluster.fromNow("1 day"))
    secrets.set("project/allowed", {"secret": {"v": "for the task"}, "expires": expires})
    secrets.set("project/denied", {"secret": {"v": "not for the task"}, "expires": expires})
    start_worker()
    fetch = (
        "import os, sys, urllib.request, urllib.error\n"
        "for name in sys.argv[1:]:\n"
        "    url = f\"{os.environ['TASKCLUSTER_PROXY_URL']}/secrets/v1/secret/{name}\"\n"
        "    try:\n"
        "        print(name, urllib.request.urlopen(url).read().decode())\n"
        "    except urllib.error.HTTPError as e:\n"
        "        print(name, e.code)\n"
    )
    task_id = taskcluster.slugId()
    command = [[sys.executable, "-c", fetch, "project/allowed", "project/denied"]]
    queue.createTask(task_id, {**hook_task(payload={"command": command, "features": {"taskclusterProxy": True}},
                                           scopes=["secrets:get:project/allowed"]),
                               "created": _now(), "deadline": _later()})
    assert resolved(queue, task_id)["state"] == "completed"
    log = task_log(queue, task_id)
    assert 'project/allowed {"secret":{"v":"for the task"}' in log
    assert "project/denied 403\n" in log
    assert "not for the task" not in log
