"""How fast views are rebuilt from the log (events per second).

    CAIRN_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/cairn_bench \\
        .venv/bin/python bench/bench_rebuild.py --events 1000000

Fills a fresh database's log with whole task lifecycles — defined and
pending, claimed, resolved; one in ten retried after ``worker-shutdown`` —
saved through the event log a thousand tasks at a time, with the views
switched off while filling (the rebuild makes them). Then times, in wall
time and in CPU time — this process's and its rebuild lanes'
(``projections/rebuild/lanes.py``), the figure to read on a busy machine:

- ``rebuild``: every write-side projection, replayed into scratch tables in
  one pass over the log and swapped in;
- ``follow runs``: the runs analytics follower catching up from position 0;
- ``rebuild all``: every projection, the read-side runs analytics too
  (what ``cairn projections rebuild`` does);
- ``rebuild runs``: the runs analytics alone.

The default is 200,000 events; ``--events 1000000`` for the million-event
figure. ``--no-reset`` keeps the log of an earlier run (the default drops
and creates the database named in the URL first); ``--lanes 1`` folds in
this process alone.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import tempfile
import time
from datetime import timedelta
from typing import Any

import psycopg
import taskcluster

from cairn.domain.aggregate import acting_as
from cairn.domain.queue.service import normalise_definition
from cairn.domain.queue.task import Task
from cairn.domain.queue.task_group import TaskGroup
from cairn.domain.timestamps import iso, utcnow
from cairn.projections.rebuild.replay import Replay, Target
from cairn.runtime import Runtime
from cairn.settings import Settings

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/cairn_bench"
TASKS_PER_SAVE = 1000
QUEUES = 20


def reset_database(url: str) -> None:
    admin_url, name = url.rsplit("/", 1)
    with psycopg.connect(admin_url + "/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')


def definition(task_id: str, group: str, queue: int, now: Any) -> dict[str, Any]:
    body = {
        "taskQueueId": f"bench/q{queue}",
        "taskGroupId": group,
        "created": iso(now),
        "deadline": iso(now + timedelta(days=1)),
        "payload": {"command": ["echo", "hello"], "env": {"N": task_id}},
        "metadata": {"name": "bench", "description": "a benchmark task", "owner": "bench@example.com",
                     "source": "https://example.com/bench"},
        "routes": [f"index.bench.{queue}"],
    }
    return normalise_definition(task_id, body, now)


def fill(runtime: Runtime, events: int) -> int:
    """Append task lifecycles until the log holds about ``events`` events; returns the head."""
    log = runtime.log
    writers, runtime.store.view_writers[:] = list(runtime.store.view_writers), []
    try:
        with acting_as("bench"):
            while (log.recorder.max_notification_id() or 0) < events:
                now = utcnow()
                group = TaskGroup(task_group_id=taskcluster.slugId(), scheduler_id="-")
                tasks = []
                for i in range(TASKS_PER_SAVE):
                    task_id = taskcluster.slugId()
                    task = Task(task_id=task_id, definition=definition(task_id, group.task_group_id, i % QUEUES, now))
                    task.schedule(now)
                    tasks.append(task)
                log.save(group, *tasks)
                for task in tasks:
                    task.claim(0, "bench", f"w{hash(task.task_id) % 50}", now, 1200)
                log.save(*tasks)
                for n, task in enumerate(tasks):
                    if n % 10 == 0:
                        task.report(0, "exception", "worker-shutdown", now)
                        task.claim(1, "bench", "w0", now, 1200)
                        task.report(1, "completed", "completed", now)
                    else:
                        task.report(0, "completed" if n % 7 else "failed", "completed" if n % 7 else "failed", now)
                log.save(*tasks)
    finally:
        runtime.store.view_writers[:] = writers
    return log.recorder.max_notification_id() or 0


def cpu_seconds() -> float:
    """CPU time of this process and of the children it has waited for (rebuild lanes)."""
    mine, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return mine.ru_utime + mine.ru_stime + children.ru_utime + children.ru_stime


def timed(label: str, events: int, fn: Any) -> float:
    """Wall time, and CPU time: on a shared machine the second tells what the code costs."""
    started, cpu = time.perf_counter(), cpu_seconds()
    fn()
    seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    print(
        f"{label:<14} {events:>10,} events in {seconds:7.1f} s = {events / seconds:>9,.0f} events/s"
        f"   (CPU {cpu:6.1f} s here and in lanes = {events / cpu:>9,.0f} events per CPU-second)",
        flush=True,
    )
    return events / seconds


def lanes_of(replay: Replay) -> str:
    if not replay.lane_report:
        return "folded in one process"
    return "lanes: " + " | ".join(
        f"{', '.join(lane['targets'])} ({lane['seconds']:.1f} s, CPU {lane['cpu']:.1f} s)" for lane in replay.lane_report
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--no-reset", dest="reset", action="store_false", help="keep the database's log")
    parser.add_argument("--lanes", type=int, default=0, help="processes to fold in: 0 for one per core")
    args = parser.parse_args()

    url = os.environ.get("CAIRN_DATABASE_URL", DEFAULT_URL)
    if args.reset and url.startswith("postgres"):
        reset_database(url)
    data_dir = tempfile.mkdtemp(prefix="cairn-bench-")
    runtime = Runtime(Settings(database_url=url, data_dir=data_dir, secret_key=os.environ.get("CAIRN_SECRET_KEY", "")))
    try:
        started = time.perf_counter()
        head = fill(runtime, args.events)
        print(f"{'fill':<14} {head:>10,} events in {time.perf_counter() - started:7.1f} s ({url.split('@')[-1]})")

        writers = [Target(w) for w in runtime.store.view_writers if hasattr(w, "tables") and w.tables]
        (follower,) = [f for f in runtime.view_followers if f.name == "runs"]
        replays: list[Replay] = []

        def rebuild(targets: list[Target]) -> None:
            replay = Replay(runtime.log, targets, lanes=args.lanes)
            replays.append(replay)
            replay.build()
            replay.swap()

        timed("rebuild", head, lambda: rebuild(writers))
        print(f"{'':<14} {lanes_of(replays[-1])}", flush=True)
        with runtime.store.unit_of_work() as session:  # follow from the start of the log
            for table in follower.consumer.tables:
                session.execute_sql(f"DELETE FROM {table}")
            session.run("set_consumer_position", {"name": follower.name, "position": 0})
        timed("follow runs", head, follower.catch_up)
        everything = [Target(w.projection) for w in writers] + [Target(follower.consumer, consumer=follower.name)]
        timed("rebuild all", head, lambda: rebuild(everything))
        print(f"{'':<14} {lanes_of(replays[-1])}", flush=True)
        timed("rebuild runs", head, lambda: rebuild([Target(follower.consumer, consumer=follower.name)]))
        print(f"{'':<14} {lanes_of(replays[-1])}", flush=True)
    finally:
        runtime.close()
        shutil.rmtree(data_dir, ignore_errors=True)  # the deployment key it generated


if __name__ == "__main__":
    main()
