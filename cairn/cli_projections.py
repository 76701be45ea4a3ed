"""``cairn projections list | rebuild | verify`` and ``cairn export``: views as the log makes them.

Every view is derived from the log and can be made again from it. These
commands work on the database in CAIRN_DATABASE_URL — refusing, rather than
creating one, where there is none — while Cairn keeps
serving: a rebuild swaps its new tables in without stopping writers (see
``projections/rebuild/swap.py``), and a verify blocks nobody on PostgreSQL.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from cairn.cli_output import CairnCommand, CairnGroup, json_option, print_json
from cairn.cli_sources import require_database
from cairn.settings import Settings
from cairn.startup_checks import without_password

LOCK_NAME = "projections-rebuild"
#: The event store's own switch (eventsourcing reads ``<APP>_CREATE_TABLE`` first).
SKIP_SCHEMA_VARIABLE = "CAIRN_CREATE_TABLE"


@contextmanager
def open_runtime() -> Iterator[Any]:
    from cairn.runtime import Runtime

    settings = require_database()
    if settings.backend == "postgres" and not _log_present(settings):
        raise click.ClickException(
            f"the database at {without_password(settings.database_url)} holds no Cairn log "
            "(set CAIRN_DATABASE_URL to the deployment's database); nothing was created"
        )
    with schema_as_it_is(settings):
        runtime = Runtime(settings)
    try:
        yield runtime
    finally:
        runtime.close()


@contextmanager
def schema_as_it_is(settings: Settings) -> Iterator[None]:
    """Start without running the schema's DDL again when every table is already there.

    On PostgreSQL ``CREATE INDEX IF NOT EXISTS`` takes a SHARE lock on its
    table even when the index exists; run next to busy writers (one holding
    a view table and waiting for another) it can deadlock them, and these
    commands are meant to run while Cairn serves.
    """
    if settings.backend != "postgres" or not _schema_present(settings):
        yield
        return
    previous = os.environ.get(SKIP_SCHEMA_VARIABLE)
    os.environ[SKIP_SCHEMA_VARIABLE] = "n"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(SKIP_SCHEMA_VARIABLE, None)
        else:
            os.environ[SKIP_SCHEMA_VARIABLE] = previous


def _log_present(settings: Settings) -> bool:
    """Whether the PostgreSQL database holds Cairn's log at all."""
    import psycopg

    from cairn.projections.store.event_log import SqlEventLog

    try:
        with psycopg.connect(settings.database_url, connect_timeout=10) as conn:
            row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{SqlEventLog.name}_events",)).fetchone()
    except psycopg.Error as e:
        raise click.ClickException(
            f"cannot reach the database at {without_password(settings.database_url)}: {' '.join(str(e).split())}"
        ) from None
    return bool(row and row[0])


def _schema_present(settings: Settings) -> bool:
    import psycopg

    from cairn.projections.rebuild.scratch import schema_relations
    from cairn.projections.store.event_log import SqlEventLog

    names = [f"{SqlEventLog.name}_events", *schema_relations("postgres")]
    try:
        with psycopg.connect(settings.database_url, connect_timeout=10) as conn:
            row = conn.execute("SELECT bool_and(to_regclass(n) IS NOT NULL) FROM unnest(%s::text[]) AS n", (names,)).fetchone()
    except psycopg.Error:
        return False
    return bool(row and row[0])


def write_side(runtime: Any) -> list[Any]:
    from cairn.projections.projection import Projection

    return [w for w in runtime.store.view_writers if isinstance(w, Projection)]


def read_side(runtime: Any) -> list[Any]:
    """The log followers that keep read-side views (``Runtime.view_followers``)."""
    return list(getattr(runtime, "view_followers", []))


def targets(runtime: Any, name: str | None) -> list[Any]:
    from cairn.projections.rebuild.replay import Target

    found = [Target(p) for p in write_side(runtime)]
    found += [Target(f.consumer, consumer=f.name) for f in read_side(runtime)]
    if name is None:
        return found
    chosen = [t for t in found if t.name == name]
    if not chosen:
        names = ", ".join(t.name for t in found)
        raise click.BadParameter(f"no projection {name!r}; there are: {names}", param_hint="NAME")
    return chosen


@contextmanager
def only_one_at_a_time(runtime: Any) -> Iterator[None]:
    """On PostgreSQL, one rebuild or verify at a time across every process."""
    from cairn.consumers.leadership import Leadership

    conninfo = runtime.settings.database_url if runtime.settings.backend == "postgres" else None
    lock = Leadership(conninfo, LOCK_NAME)
    if not lock.held():
        raise click.ClickException("another `cairn projections rebuild` or `verify` is running")
    try:
        yield
    finally:
        lock.release()


class EventRate(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} events/s" if speed else "", style="cyan")


@contextmanager
def progress_bar(description: str, total: int) -> Iterator[Any]:
    """A rich progress bar on stderr; yields ``advance(n)``."""
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,.0f}/{task.total:,.0f}"),
        EventRate(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=False,
    )
    with progress:
        task = progress.add_task(description, total=max(total, 1))

        def advance(n: int) -> None:
            current = progress.tasks[0]
            if current.completed + n > (current.total or 0):
                progress.update(task, total=current.completed + n)
            progress.advance(task, n)

        yield advance


def replay_all(runtime: Any, chosen: list[Any], suffix: str, description: str, lanes: int = 0) -> Any:
    """A Replay of ``chosen`` caught up in scratch tables, with a progress bar."""
    from cairn.projections.rebuild.replay import Replay

    probe = Replay(runtime.log, chosen, suffix)
    with runtime.store.reading() as session:
        total = probe.remaining(probe.limits(session))
    with progress_bar(description, total) as advance:
        replay = Replay(runtime.log, chosen, suffix, progress=advance, lanes=lanes)
        try:
            replay.build()
        except BaseException:
            replay.drop()
            raise
    return replay


@click.group(cls=CairnGroup)
def projections() -> None:
    """List, rebuild and verify the views derived from the log."""


@projections.command("list")
@json_option
def list_projections(as_json: bool) -> None:
    """Every projection: its tables and row counts; read-side ones with their position.

    Then every event a consumer set aside after its retries failed.
    """
    from cairn.consumers.dead_letters import dead_letters
    from cairn.consumers.log_follower import read_position

    console = Console()
    listed: list[dict[str, Any]] = []
    with open_runtime() as runtime:
        head = runtime.log.recorder.max_notification_id() or 0
        table = Table("projection", "kept", "position", "table", "rows", title=f"log head: {head:,}")
        rows: list[tuple[str, str, str, list[str]]] = []
        for p in write_side(runtime):
            rows.append((p.name, "with each write", f"{head:,}", list(p.tables)))
        for f in read_side(runtime):
            position = read_position(runtime.store, f.name)
            rows.append((f.name, "by a log follower", f"{position:,} ({head - position:,} behind)", list(f.consumer.tables)))
        with runtime.store.reading() as session:
            for name, kept, position, tables in rows:
                counts: dict[str, int] = {}
                for i, t in enumerate(tables):
                    session.cursor.execute(f"SELECT count(*) AS n FROM {t}")
                    count = counts[t] = dict(session.cursor.fetchall()[0])["n"]
                    first = i == 0
                    table.add_row(name if first else "", kept if first else "", position if first else "", t, f"{count:,}")
                listed.append({"name": name, "kept": kept, "position": int(position.split()[0].replace(",", "")),
                               "rows": counts})
        letters = dead_letters(runtime.store)
    if as_json:
        print_json({"head": head, "projections": listed, "deadLetters": [dataclasses.asdict(d) for d in letters]})
        return
    console.print(table)
    console.print(dead_letter_table(letters))


def dead_letter_table(letters: list[Any]) -> Table:
    """The events consumers set aside (``consumers/dead_letters.py``): where, what, and why."""
    table = Table("consumer", "position", "event", "attempts", "failed at", "reason",
                  title=f"events set aside by consumers: {len(letters):,}")
    for d in letters:
        event = f"{d.event_type} {d.originator_id} v{d.originator_version}"
        table.add_row(d.consumer, f"{d.position:,}", event, str(d.attempts), d.failed_at, d.reason)
    return table


LANES = click.option(
    "--lanes", type=click.IntRange(min=0), default=0, show_default=True,
    help="Processes a long log is folded in on PostgreSQL: 0 for one per core, 1 for this one only.",
)


@projections.command()
@click.argument("name", required=False)
@LANES
@json_option
def rebuild(name: str | None, lanes: int, as_json: bool) -> None:
    """Replay the log into fresh tables and swap them in, without stopping Cairn.

    NAME is one projection (see `cairn projections list`); without it, all.
    """
    from cairn.projections.rebuild.scratch import REBUILD_SUFFIX
    from cairn.projections.rebuild.swap import SwapTimeout

    with open_runtime() as runtime, only_one_at_a_time(runtime):
        chosen = targets(runtime, name)
        started = time.monotonic()
        replay = replay_all(runtime, chosen, REBUILD_SUFFIX, "rebuilding", lanes)
        try:
            replay.swap()
        except SwapTimeout as e:
            replay.drop()
            raise click.ClickException(str(e)) from None
        except BaseException:
            replay.drop()
            raise
        seconds = time.monotonic() - started
        events = max([replay.written] + [t.position for t in chosen])
        if as_json:
            print_json({
                "rebuilt": [t.name for t in chosen], "events": events, "seconds": round(seconds, 3),
                "processes": max(len(replay.lane_report), 1),
                "lockedMilliseconds": round(replay.locked_seconds * 1000, 1), "lockAttempts": replay.lock_attempts,
            })
            return
        lanes = " | ".join(", ".join(lane["targets"]) for lane in replay.lane_report)
        click.echo(
            f"rebuilt {', '.join(t.name for t in chosen)} from {events:,} events "
            f"in {seconds:.1f} s ({events / max(seconds, 1e-9):,.0f} events/s"
            + (f", in {len(replay.lane_report)} processes: {lanes}" if lanes else "")
            + f"); swapped in holding writers back {replay.locked_seconds * 1000:,.0f} ms "
            f"(locks taken at attempt {replay.lock_attempts})"
        )


@projections.command()
@click.argument("name", required=False)
@LANES
@json_option
def verify(name: str | None, lanes: int, as_json: bool) -> None:
    """Rebuild into scratch tables and compare them with the live views.

    Prints every difference and exits with status 1 if there is any.
    """
    from cairn.projections.rebuild.scratch import VERIFY_SUFFIX

    with open_runtime() as runtime, only_one_at_a_time(runtime):
        chosen = targets(runtime, name)
        replay = replay_all(runtime, chosen, VERIFY_SUFFIX, "verifying", lanes)
        try:
            differences = replay.compare()
        except BaseException:
            replay.drop()
            raise
    if as_json:
        print_json({"projections": [t.name for t in chosen], "match": not differences,
                    "differences": [d.describe() for d in differences]})
        sys.exit(1 if differences else 0)
    for d in differences:
        click.echo(d.describe())
    names = ", ".join(t.name for t in chosen)
    if differences:
        click.echo(f"{len(differences)} difference(s) between the views and the log ({names})", err=True)
        sys.exit(1)
    click.echo(f"views match the log: {names}")


@click.command(cls=CairnCommand)
@click.argument("view", type=click.Choice(["runs"]))
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet"]), default="csv", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), help="File to write; default stdout.")
@click.option("--catch-up/--no-catch-up", default=True, show_default=True,
              help="First fold the events the view has not followed yet.")
@click.option("--json", "as_json", is_flag=True, help="Write one JSON document, {view, rows}, instead of --format.")
def export(view: str, fmt: str, output: str | None, catch_up: bool, as_json: bool) -> None:
    """Export an analytics view for pandas, DuckDB or a warehouse.

    `runs`: one row per run of every task — ids, queue, group, project,
    scheduler, state and reasons, worker, times and durations in seconds.
    """
    from cairn.projections.queue.runs_analytics import iter_runs, write_csv, write_parquet

    with open_runtime() as runtime:
        if catch_up:
            for follower in read_side(runtime):
                if follower.name == view:
                    follower.catch_up()
        pages = iter_runs(runtime.store)
        if as_json:
            rows = [row for page in pages for row in page]
            count = len(rows)
            document = json.dumps({"view": view, "rows": rows}, indent=2, default=str)
            if output is None:
                click.echo(document)
            else:
                with open(output, "w") as out:
                    out.write(document + "\n")
        elif fmt == "csv":
            if output is None:
                count = write_csv(pages, sys.stdout)
            else:
                with open(output, "w", newline="") as out:
                    count = write_csv(pages, out)
        else:
            try:
                import pyarrow  # noqa: F401
            except ImportError:
                raise click.ClickException("parquet needs pyarrow: pip install pyarrow") from None
            count = write_parquet(pages, output if output is not None else sys.stdout.buffer)
    if output is not None:
        click.echo(f"{count:,} runs written to {output}", err=True)
