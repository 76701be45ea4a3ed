"""Writable caches end to end: kept by a real ``cairn worker`` between tasks, purged when asked, never shared.

Tasks count how many runs have used their cache, in a file inside it: a task
that sees ``1`` is the first since the cache was (re)made.
"""

from __future__ import annotations

import base64
import io
import os
import subprocess
import tarfile
import time
from typing import Any

from tests.acceptance.test_worker import create, resolved, task_log, wait_for
from tests.acceptance.test_worker import server, settings_overrides, start_worker  # noqa: F401 (fixtures)

CACHE = "checkouts"
SCOPES = [f"generic-worker:cache:{CACHE}"]
#: Counts the runs that used the cache, prints the count, and exits with $EXIT (0 when unset).
COUNTING = 'n=$(cat cache/count 2>/dev/null || echo 0); n=$((n + 1)); echo $n > cache/count; echo "count=$n"; exit ${EXIT:-0}'


def counting(queue: Any, exit_status: int = 0, **payload: Any) -> str:
    return create(queue, {
        "command": COUNTING,
        "env": {"EXIT": str(exit_status)},
        "mounts": [{"directory": "cache", "cacheName": CACHE}],
        **payload,
    }, scopes=SCOPES)


def count_of(queue: Any, task_id: str, state: str = "completed") -> int:
    status = resolved(queue, task_id)
    log = task_log(queue, task_id)
    assert status["state"] == state, log
    (line,) = [line for line in log.splitlines() if line.startswith("count=")]
    return int(line.removeprefix("count="))


def test_a_cache_survives_to_the_next_task_and_is_purged_after_purge_caches(server, start_worker):
    queue = server.client("queue")
    start_worker()
    assert count_of(queue, counting(queue)) == 1
    assert count_of(queue, counting(queue)) == 2
    purging = counting(queue, exit_status=5, onExitStatus={"purgeCaches": [5]})
    assert count_of(queue, purging, "failed") == 3
    log = task_log(queue, purging)
    assert "Purging the task's caches: exit status 5 is listed in onExitStatus.purgeCaches" in log
    assert count_of(queue, counting(queue)) == 1
    # Listed in purgeCaches, but another status: kept.
    assert count_of(queue, counting(queue, exit_status=0, onExitStatus={"purgeCaches": [5]})) == 2
    assert count_of(queue, counting(queue)) == 3


def test_a_purge_request_makes_the_next_task_see_an_empty_cache(server, start_worker):
    queue = server.client("queue")
    purge = server.client("purgeCache")
    worker = start_worker()
    assert count_of(queue, counting(queue)) == 1
    # From its first task with a cache on, the worker follows the event stream: a
    # request reaches it there, and the next task, claimed after it, waits until it has.
    wait_for(lambda: "following the event stream" in worker.output(), what="the worker to follow the stream")
    assert count_of(queue, counting(queue)) == 2
    purge.purgeCache("cairn-test/worker", {"cacheName": CACHE})
    after = counting(queue)
    assert count_of(queue, after) == 1
    assert "Purge requests made before this run was claimed are honoured (from the event stream)" in task_log(
        queue, after
    )
    assert count_of(queue, counting(queue)) == 2
    # A request for another cache, or another pool, leaves this one alone.
    purge.purgeCache("cairn-test/worker", {"cacheName": "something-else"})
    purge.purgeCache("cairn-test/other", {"cacheName": CACHE})
    assert count_of(queue, counting(queue)) == 3


def test_a_request_made_while_the_worker_was_away_is_honoured_when_it_starts(server, start_worker):
    queue = server.client("queue")
    worker = start_worker()
    assert count_of(queue, counting(queue)) == 1
    assert worker.terminate() == 0
    server.client("purgeCache").purgeCache("cairn-test/worker", {"cacheName": CACHE})
    # The same worker again, on the same work directory and so the same caches.
    env = dict(os.environ, TASKCLUSTER_ROOT_URL=server.root_url, TASKCLUSTER_CLIENT_ID="static/root",
               TASKCLUSTER_ACCESS_TOKEN=server.options()["credentials"]["accessToken"])
    with worker.log_path.open("ab") as out:
        worker.process = subprocess.Popen(worker.process.args, env=env, stdout=out, stderr=out)
    assert count_of(queue, counting(queue)) == 1
    assert count_of(queue, counting(queue)) == 2


def test_a_cache_is_never_shared_by_two_running_tasks(server, start_worker, tmp_path):
    queue = server.client("queue")
    start_worker(capacity=2)
    assert count_of(queue, counting(queue)) == 1
    # Both hold a cache while the other runs: one gets the existing cache, the other a new one.
    started = tmp_path / "started"
    started.mkdir()
    holding = f"touch {started}/$TASK_ID; while [ $(ls {started} | wc -l) -lt 2 ]; do sleep 0.1; done; {COUNTING}"
    pair = [
        create(queue, {"command": holding, "mounts": [{"directory": "cache", "cacheName": CACHE}]}, scopes=SCOPES)
        for _ in range(2)
    ]
    assert sorted(count_of(queue, task_id) for task_id in pair) == [1, 2]
    # Both are kept (two tasks at once may need two), the most recently used first.
    later = [count_of(queue, counting(queue)) for _ in range(2)]
    assert later[0] in (2, 3) and later[1] == later[0] + 1


def test_caches_need_their_scope_and_a_failed_unpack_purges_a_new_one(server, start_worker):
    queue = server.client("queue")
    start_worker()
    unscoped = create(queue, {"command": "true", "mounts": [{"directory": "cache", "cacheName": CACHE}]})
    status = resolved(queue, unscoped)
    assert (status["state"], status["runs"][0]["reasonResolved"]) == ("exception", "malformed-payload")
    assert "generic-worker:cache:checkouts" in task_log(queue, unscoped)

    bad = base64.b64encode(b"this is not a tarball").decode()
    failing = create(queue, {
        "command": "true",
        "mounts": [{"directory": "cache", "cacheName": CACHE, "format": "tar.gz", "content": {"base64": bad}}],
    }, scopes=SCOPES)
    assert resolved(queue, failing)["state"] == "failed"
    log = task_log(queue, failing)
    assert "cannot unpack the tar.gz archive" in log
    assert "Cache checkouts: deleted, as its content could not be put in it" in log

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo("count")
        info.size = 3
        archive.addfile(info, io.BytesIO(b"41\n"))
    preloaded = {"directory": "cache", "cacheName": CACHE, "format": "tar.gz",
                 "content": {"base64": base64.b64encode(buffer.getvalue()).decode()}}
    first = create(queue, {"command": COUNTING, "mounts": [preloaded]}, scopes=SCOPES)
    assert count_of(queue, first) == 42
    # The content only fills a new cache: the next task finds the cache as the last one left it.
    assert count_of(queue, create(queue, {"command": COUNTING, "mounts": [preloaded]}, scopes=SCOPES)) == 43


def test_a_killed_task_leaves_no_cache_behind(server, start_worker):
    queue = server.client("queue")
    start_worker()
    assert count_of(queue, counting(queue)) == 1
    killed = create(queue, {
        "command": f"{COUNTING.split('; exit')[0]}; sleep 30",
        "maxRunTime": 2,
        "mounts": [{"directory": "cache", "cacheName": CACHE}],
    }, scopes=SCOPES)
    started = time.monotonic()
    assert resolved(queue, killed)["state"] == "failed"
    assert time.monotonic() - started < 20
    assert "the commands were killed past maxRunTime" in task_log(queue, killed)
    assert count_of(queue, counting(queue)) == 1
