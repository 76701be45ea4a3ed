"""Every process Cairn runs, in one table.

``cairn serve`` runs them all: the HTTP API and, beside it, every
background process whose settings are there (the Pulse publisher needs
``CAIRN_AMQP_URL``). ``cairn run NAME`` runs one of them alone, for a
deployment that gives each its own process; ``cairn run web`` serves HTTP
with none of the background ones. Any number of copies of each may run:

- a process that **needs a leader** runs in one process of the deployment
  at a time — on PostgreSQL the holder of an advisory lock named after it
  (``consumers/leadership.py``); the others stand by and take over when its
  connection goes. On SQLite there is one process and nothing to elect.
- a process that runs **with the web** serves that process's own clients
  (the event stream's subscribers), so it runs wherever HTTP is served.

A new process is one line in :data:`PROCESSES`: a log consumer is built
with :func:`follower` (see ``consumers/log_follower.py`` for what a
consumer declares).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

# The consumers are imported where a process is built: the table itself is
# read by every `cairn` command, and should cost it nothing.
if TYPE_CHECKING:
    from cairn.consumers.log_follower import Consumer, LogFollower
    from cairn.consumers.reaper import Reaper
    from cairn.runtime import Runtime
    from cairn.settings import Settings

# Read-side followers (index, analytics) may trail the log: gathering
# commits for a fifth of a second turns a busy stream of small commits into
# a few batches, instead of three or four queries per commit per follower.
READ_SIDE_COALESCE = 0.2

#: build(runtime, conninfo) -> something with start() and stop(); conninfo is
#: the database to elect a leader in, None when there is nothing to elect.
Build = Callable[["Runtime", "str | None"], Any]


@dataclass(frozen=True)
class Process:
    name: str
    summary: str
    leader: bool
    build: Build | None = None
    with_web: bool = False
    #: Why this process cannot run with these settings (None: it can).
    missing: Callable[[Settings], str | None] = lambda settings: None


def follower(runtime: Runtime, conninfo: str | None, consumer: Consumer, **options: Any) -> LogFollower:
    """A log follower for ``consumer`` in ``runtime``, led through ``conninfo``."""
    from cairn.consumers.log_follower import LogFollower

    return LogFollower(
        runtime.log, runtime.log_signal, consumer, conninfo=conninfo, reader=runtime.log_reader, **options
    )


def _no_amqp(settings: Settings) -> str | None:
    return None if settings.amqp_url else "CAIRN_AMQP_URL is not set: there is nowhere to publish"


def _pulse_publisher(runtime: Runtime, conninfo: str | None) -> LogFollower:
    from cairn.consumers.pulse_publisher import BATCH

    return follower(runtime, conninfo, runtime.make_pulse_publisher(), batch_size=BATCH, coalesce=0)


def _task_indexer(runtime: Runtime, conninfo: str | None) -> LogFollower:
    from cairn.consumers.task_indexer import TaskIndexer

    return follower(runtime, conninfo, TaskIndexer(runtime.log, runtime.index), coalesce=READ_SIDE_COALESCE)


def _reaper(runtime: Runtime, conninfo: str | None) -> Reaper:
    from cairn.consumers.reaper import Reaper
    from cairn.projections.relay.relay_upkeep import RelayUpkeep

    reaper = Reaper(runtime.queue, runtime.queue_reads, runtime.settings.reaper_interval, conninfo)
    reaper.passes += [
        runtime.storage_expiry, runtime.index_expiry, runtime.nonces.prune, runtime.hooks_and_secrets.expire_secrets,
        runtime.purge_cache.expire_requests,
    ]
    reaper.passes.append(RelayUpkeep(runtime.store, runtime.queue_reads))
    return reaper


def _built_in_workers(runtime: Runtime, conninfo: str | None) -> Any:
    from cairn.consumers.built_in_workers import BuiltInWorkers

    return BuiltInWorkers(runtime.queue, runtime.pending_signal, conninfo)


def _no_channel(settings: Settings) -> str | None:
    if settings.smtp_url or settings.slack_token or (settings.matrix_base_url and settings.matrix_access_token):
        return None
    return "no e-mail, Slack or Matrix is configured: Pulse notifications need no delivery"


PROCESSES: tuple[Process, ...] = (
    Process("web", "the HTTP API: every service, the schemas and the references", leader=False),
    Process(
        "event-stream", "Pulse messages to this process's server-sent event subscribers", leader=False,
        build=lambda rt, _: rt.event_stream, with_web=True,
    ),
    Process(
        "pulse-publisher", "Pulse messages to RabbitMQ, at least once, in log order", leader=True,
        build=_pulse_publisher, missing=_no_amqp,
    ),
    Process(
        "task-indexer", "completed tasks into the index, under their index routes", leader=True,
        build=_task_indexer,
    ),
    Process(
        "runs-analytics", "the runs analytics view (cairn export runs), exactly once", leader=True,
        build=lambda rt, db: follower(rt, db, rt.runs_analytics, coalesce=READ_SIDE_COALESCE),
    ),
    Process(
        "reaper", "lapsed claims, passed deadlines, expired tasks, artifacts, objects, index entries", leader=True,
        build=_reaper,
    ),
    Process(
        "built-in-workers", "tasks on built-in/succeed and built-in/fail, resolved as they become pending",
        leader=True, build=_built_in_workers,
    ),
    Process(
        "hook-scheduler", "hooks' schedules: each due time fired once, woken when a hook changes", leader=True,
        build=lambda rt, _: rt.hooks_and_secrets.scheduler,
    ),
    Process(
        "hook-listener", "hooks' bindings on Cairn's own exchanges, matched straight from the log", leader=True,
        build=lambda rt, _: rt.hooks_and_secrets.listener,
    ),
    Process(
        "hook-amqp-listener", "hooks' bindings on other exchanges, through RabbitMQ", leader=True,
        build=lambda rt, _: rt.hooks_and_secrets.amqp_listener, missing=_no_amqp,
    ),
    Process(
        "task-notifier", "notifications asked for by task routes, recorded from the log", leader=True,
        build=lambda rt, _: rt.notify.notifier,
    ),
    Process(
        "notify-delivery", "recorded notifications sent by e-mail, Slack and Matrix, with retries", leader=True,
        build=lambda rt, _: rt.notify.delivery, missing=_no_channel,
    ),
)

def _no_github_app(settings: Settings) -> str | None:
    from cairn.github_flow import no_github_app

    return no_github_app(settings)


PROCESSES += (
    Process(
        "github-builds", "GitHub deliveries into task groups, with the repository role's scopes", leader=True,
        build=lambda rt, db: follower(rt, db, rt.github_flow.builder), missing=_no_github_app,
    ),
    Process(
        "github-reporter", "builds reported to GitHub as commit statuses or check runs", leader=True,
        build=lambda rt, db: follower(rt, db, rt.github_flow.reporter), missing=_no_github_app,
    ),
    Process(
        "github-requests", "the statuses and comments asked for through the github API, made on GitHub",
        leader=True, build=lambda rt, _: rt.github_flow.requests, missing=_no_github_app,
    ),
)

BY_NAME = {p.name: p for p in PROCESSES}


class Processes:
    """The processes of one runtime: built with it, started and stopped by it."""

    def __init__(self, runtime: Runtime, table: Iterable[Process] = PROCESSES):
        settings = runtime.settings
        database = settings.database_url if settings.backend == "postgres" else None
        self.table = {p.name: p for p in table}
        self.runners: dict[str, Any] = {
            p.name: p.build(runtime, database if p.leader else None)
            for p in self.table.values()
            if p.build is not None and p.missing(settings) is None
        }
        self.selected = list(self.table)
        self.started: list[Any] = []

    def __getitem__(self, name: str) -> Any:
        return self.runners[name]

    def get(self, name: str) -> Any:
        return self.runners.get(name)

    def select(self, names: Iterable[str]) -> None:
        """Run only ``names`` (with ``web``, the processes that run with it)."""
        names = list(names)
        unknown = [n for n in names if n not in self.table]
        if unknown:
            raise ValueError(f"no process {', '.join(unknown)}; there are: {', '.join(self.table)}")
        if "web" in names:
            names += [p.name for p in self.table.values() if p.with_web]
        self.selected = [n for n in self.table if n in names]

    async def start(self) -> None:
        for name in self.selected:
            runner = self.runners.get(name)
            if runner is not None:
                runner.start()
                self.started.append(runner)

    async def stop(self) -> None:
        from starlette.concurrency import run_in_threadpool

        started, self.started = self.started, []
        for runner in reversed(started):
            if inspect.iscoroutinefunction(runner.stop):
                await runner.stop()
            else:
                await run_in_threadpool(runner.stop)

    def close(self) -> None:
        """Stop every thread and give up every lead, even without a stop(): idempotent."""
        for runner in self.runners.values():
            if not inspect.iscoroutinefunction(runner.stop):
                runner.stop()
            elif getattr(runner, "leadership", None) is not None:
                runner.leadership.release()
