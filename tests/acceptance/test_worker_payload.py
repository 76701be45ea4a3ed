"""generic-worker's payload on ``cairn worker``: what it accepts, and what it refuses as ``malformed-payload``.

A real server and a real worker process, tasks created with the official
client: payloads as taskcluster-taskgraph writes them for generic-worker run
unchanged, and the refusals say why in the task's log.
"""

from __future__ import annotations

import functools
import os
import subprocess

import pytest
import taskcluster

from tests.acceptance.test_worker import create, resolved, task_log
from tests.acceptance.test_worker import server, settings_overrides, start_worker  # noqa: F401 (fixtures)


def _reason(status: dict) -> tuple[str, str]:
    return status["state"], status["runs"][-1]["reasonResolved"]


def test_a_generic_worker_payload_runs_as_written(server, start_worker):
    queue = server.client("queue")
    start_worker()
    task_id = create(queue, {
        "command": [["/bin/bash", "-cx", "mkdir -p public && echo built > public/out.txt && echo $GREETING"]],
        "env": {"GREETING": "hello from generic-worker"},
        "maxRunTime": 600,
        "artifacts": [
            {"type": "file", "path": "public/out.txt"},  # named after its path
            {"type": "directory", "path": "public/missing", "name": "public/missing", "optional": True},
            {"type": "file", "path": "public/out.txt", "name": "public/typed.txt",
             "contentType": "text/plain", "contentEncoding": "identity", "expires": taskcluster.stringDate(taskcluster.fromNow("2 days"))},
        ],
        "features": {"taskclusterProxy": False, "liveLog": True, "backingLog": True, "resourceMonitor": True},
        "logs": {"live": "public/logs/live.log", "backing": "public/logs/live_backing.log"},
        "onExitStatus": {"retry": [72], "purgeCaches": [73]},
        "osGroups": [],
        "supersederUrl": "https://example.com/superseder",
        "taskclusterProxyInterface": "localhost",
        "mounts": [],
    })

    state = resolved(queue, task_id)["state"]
    log = task_log(queue, task_id)
    assert state == "completed", log
    assert "hello from generic-worker\n" in log
    assert "Optional artifact public/missing: public/missing is not there; skipped" in log
    assert "Resource monitor: peak system memory used" in log
    names = {a["name"] for a in queue.listArtifacts(task_id, "0")["artifacts"]}
    assert {"public/out.txt", "public/typed.txt"} <= names
    assert "public/missing" not in names


def test_unknown_properties_and_what_the_worker_cannot_do_are_malformed_payloads(server, start_worker):
    queue = server.client("queue")
    start_worker(capacity=4)
    quiet = create(queue, {"command": [["true"]], "maxRunTime": 60, "features": {"resourceMonitor": False}})
    unknown = create(queue, {"command": [["true"]], "maxRunTime": 60, "image": "ubuntu:24.04"})
    stranger_group = create(queue, {"command": [["true"]], "maxRunTime": 60, "osGroups": ["no-such-group-here"]})
    video = create(queue, {"command": [["true"]], "maxRunTime": 60, "features": {"loopbackVideo": True}})
    bad_feature = create(queue, {"command": [["true"]], "maxRunTime": 60, "features": {"teleport": True}})

    assert resolved(queue, quiet)["state"] == "completed"
    assert "Resource monitor" not in task_log(queue, quiet)
    for task_id in (unknown, stranger_group, video, bad_feature):
        assert _reason(resolved(queue, task_id)) == ("exception", "malformed-payload")
    assert "payload: Additional properties are not allowed ('image' was unexpected)" in task_log(queue, unknown)
    assert "payload.features: Additional properties are not allowed ('teleport' was unexpected)" in task_log(
        queue, bad_feature
    )
    log = task_log(queue, stranger_group)
    assert "payload.osGroups: this worker cannot add its user to groups" in log
    assert "no-such-group-here" in log
    assert "payload.features.loopbackVideo: this worker pool has no such device" in task_log(queue, video)


@pytest.mark.skipif(os.geteuid() != 0, reason="putting the worker in a group needs root")
def test_os_groups_the_worker_user_is_in_need_their_scope(server, start_worker, monkeypatch):
    # The worker runs in the extra group `adm`, as if its user were a member.
    monkeypatch.setattr(subprocess, "Popen", functools.partial(subprocess.Popen, extra_groups=["adm"]))
    queue = server.client("queue")
    start_worker(capacity=2)
    without_scope = create(queue, {"command": [["id", "-Gn"]], "maxRunTime": 60, "osGroups": ["adm"]})
    with_scope = create(queue, {"command": [["id", "-Gn"]], "maxRunTime": 60, "osGroups": ["adm"]},
                        scopes=["generic-worker:os-group:cairn-test/worker/adm"])
    other_group = create(queue, {"command": [["true"]], "maxRunTime": 60, "osGroups": ["adm", "bin"]},
                         scopes=["generic-worker:os-group:cairn-test/worker/*"])

    assert _reason(resolved(queue, without_scope)) == ("exception", "malformed-payload")
    assert "the task's scopes do not include ['generic-worker:os-group:cairn-test/worker/adm']" in task_log(
        queue, without_scope
    )
    assert resolved(queue, with_scope)["state"] == "completed"
    assert "adm" in task_log(queue, with_scope).split()
    assert _reason(resolved(queue, other_group)) == ("exception", "malformed-payload")
    assert "it is not in ['bin'] (groups available on this worker pool: ['adm'])" in task_log(queue, other_group)
