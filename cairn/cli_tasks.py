"""``cairn task ...`` and ``cairn group ...``: tasks and task groups through the queue's API.

Every command uses the official ``taskcluster`` client with the credentials
in TASKCLUSTER_ROOT_URL, TASKCLUSTER_CLIENT_ID and TASKCLUSTER_ACCESS_TOKEN,
so it works against any Taskcluster deployment, not only Cairn. ``--json``
prints the API's own response.
"""

from __future__ import annotations

import datetime as dt
import io
import sys
import time
from typing import IO, Any

import click
import yaml
from rich.console import Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.text import Text

from cairn.cli_output import (
    RESOLVED,
    CairnGroup,
    api,
    json_option,
    paged,
    print_fields,
    print_json,
    print_table,
    state_text,
    stderr,
    stdout,
    table,
    taskcluster_options,
)

LIVE_LOG = "public/logs/live.log"
#: Without --follow, a live log is read until it is quiet for this long.
LIVE_LOG_IDLE = 1.5


@click.group(cls=CairnGroup)
def task() -> None:
    """Create, inspect, cancel and rerun tasks."""


@click.group(cls=CairnGroup)
def group() -> None:
    """Watch task groups."""


# creating


def load_definition(text: str) -> dict[str, Any]:
    """A task definition from YAML or JSON; YAML's dates become Taskcluster's date strings."""
    try:
        definition = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise click.ClickException(f"the task definition is not valid YAML or JSON: {' '.join(str(e).split())}") from None
    if not isinstance(definition, dict):
        raise click.ClickException("the task definition must be a mapping (YAML) or an object (JSON)")
    return _stringify_dates(definition)


def _stringify_dates(value: Any) -> Any:
    import taskcluster

    if isinstance(value, dict):
        return {str(k): _stringify_dates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_stringify_dates(v) for v in value]
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return taskcluster.stringDate(value.astimezone(dt.timezone.utc))
    if isinstance(value, dt.date):
        return value.isoformat() + "T00:00:00.000Z"
    return value


@task.command("create")
@click.argument("file", type=click.File("r"), metavar="FILE|-")
@click.option("--task-id", help="The new task's id.  [default: a new slugid]")
@click.option("--deadline", "deadline_offset", default="1 day", show_default=True,
              help="Deadline from now, used when the definition has none.")
@json_option
def create(file: IO[str], task_id: str | None, deadline_offset: str, as_json: bool) -> None:
    """Create a task from YAML or JSON (FILE or -).

    ``created`` (now) and ``deadline`` are filled in when absent. Prints the
    taskId and the task's state, and on stderr the task's page in the web UI.
    """
    import taskcluster

    definition = load_definition(file.read())
    definition.setdefault("created", taskcluster.stringDate(taskcluster.fromNow("0 seconds")))
    definition.setdefault("deadline", taskcluster.stringDate(taskcluster.fromNow(deadline_offset)))
    task_id = task_id or taskcluster.slugId()
    result = api("queue").createTask(task_id, definition)
    _print_state(result, as_json)
    if not as_json:  # stdout stays one "taskId state" line for scripts; the link is for people
        stderr().print(ui_url(f"/tasks/{task_id}"))


def ui_url(path: str) -> str:
    """The web UI's page at ``path`` (Taskcluster's UI paths, so this also works against Taskcluster)."""
    return taskcluster_options()["rootUrl"].rstrip("/") + path


def _print_state(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(result)
        return
    status = result["status"]
    stdout().print(Text.assemble(status["taskId"], " ", state_text(status["state"])))


# reading


@task.command("status")
@click.argument("task_id")
@json_option
def status(task_id: str, as_json: bool) -> None:
    """A task's state and its runs."""
    result = api("queue").status(task_id)
    if as_json:
        print_json(result)
        return
    print_status(result["status"])


def print_status(status: dict[str, Any]) -> None:
    print_fields([
        ("taskId", status["taskId"]),
        ("state", state_text(status["state"])),
        ("taskQueueId", status["taskQueueId"]),
        ("taskGroupId", status["taskGroupId"]),
        ("deadline", status["deadline"]),
        ("retriesLeft", status["retriesLeft"]),
        ("url", ui_url(f"/tasks/{status['taskId']}")),
    ])
    if status["runs"]:
        print_table(
            ("run", "state", "reason created", "reason resolved", "worker", "scheduled", "started", "resolved"),
            (
                (
                    run["runId"],
                    state_text(run["state"]),
                    run["reasonCreated"],
                    run.get("reasonResolved"),
                    f"{run['workerGroup']}/{run['workerId']}" if "workerId" in run else None,
                    run.get("scheduled"),
                    run.get("started"),
                    run.get("resolved"),
                )
                for run in status["runs"]
            ),
        )


@task.command("def")
@click.argument("task_id")
@json_option
def definition(task_id: str, as_json: bool) -> None:
    """A task's definition, as YAML.

    `cairn task create` reads it back.
    """
    result = api("queue").task(task_id)
    if as_json:
        print_json(result)
        return
    print_yaml(result)


def print_yaml(data: Any) -> None:
    click.echo(yaml.safe_dump(data, sort_keys=False, allow_unicode=True).rstrip())


@task.command("artifacts")
@click.argument("task_id")
@json_option
def artifacts(task_id: str, as_json: bool) -> None:
    """The artifacts of a task's latest run."""
    found = paged(api("queue").listLatestArtifacts, "artifacts", task_id)
    if as_json:
        print_json({"artifacts": found})
        return
    if not found:
        click.echo(f"(the latest run of {task_id} has no artifacts)", err=True)
        return
    print_table(
        ("name", "storage", "content type", "expires"),
        ((a["name"], a["storageType"], a["contentType"], a["expires"]) for a in found),
    )


# changing


@task.command("cancel")
@click.argument("task_id")
@json_option
def cancel(task_id: str, as_json: bool) -> None:
    """Cancel a task (exception/canceled)."""
    _print_state(api("queue").cancelTask(task_id), as_json)


@task.command("rerun")
@click.argument("task_id")
@json_option
def rerun(task_id: str, as_json: bool) -> None:
    """Run a resolved task again, as a new pending run."""
    _print_state(api("queue").rerunTask(task_id), as_json)


# the log


@task.command("log")
@click.argument("task_id")
@click.option("-f", "--follow", is_flag=True, help="Wait for the task to run and stream its log until it resolves.")
@json_option
def task_log(task_id: str, follow: bool, as_json: bool) -> None:
    """Print public/logs/live.log of the task's latest run.

    While the run is going the log is streamed through Cairn (without -f,
    what it has so far); once the run has ended, the stored copy is
    downloaded. With -f, waits for the task to start, streams each run's log
    as it is written — a retried task's next run too — until the task
    resolves, and exits with status 1 unless it completed. With --json, the
    log comes as one JSON document once read: {taskId, state, runs: [{runId, log}]}.
    """
    queue = api("queue")
    out: IO[bytes] = io.BytesIO() if as_json else click.open_file("-", "wb")
    logs: dict[int, bytes] = {}
    printed: set[int] = set()
    announced = -1
    while True:
        task_status = queue.status(task_id)["status"]
        runs = task_status["runs"]
        latest = len(runs) - 1
        if latest < 0 and not follow:
            raise click.ClickException(f"task {task_id} has no runs yet, so no log (use -f to wait for it)")
        if latest < 0 or latest in printed:
            if task_status["state"] in RESOLVED:
                break
            time.sleep(1.0)
            continue
        if printed and latest != announced and not as_json:
            click.echo(f"--- run {latest} ({runs[latest]['reasonCreated']}) ---", err=True)
            announced = latest
        if _print_run_log(queue, task_id, latest, runs[latest]["state"], follow, out):
            printed.add(latest)
            if as_json:
                logs[latest] = out.getvalue()  # type: ignore[attr-defined]
                out = io.BytesIO()
            if not follow:
                break
        else:
            time.sleep(0.5)
    state = task_status["state"]
    if as_json:
        print_json({
            "taskId": task_id,
            "state": state,
            "runs": [{"runId": run_id, "log": data.decode("utf-8", "replace")} for run_id, data in sorted(logs.items())],
        })
    if follow and state != "completed":
        # For scripts: following a task to its end succeeds only if it completed.
        click.echo(f"task {task_id} resolved as {state}", err=True)
        sys.exit(1)


def _print_run_log(queue: Any, task_id: str, run_id: int, run_state: str, follow: bool, out: IO[bytes]) -> bool:
    """Write one run's log to ``out``; False if it is not there yet (only when following)."""
    import taskcluster.download
    from taskcluster.exceptions import TaskclusterRestFailure

    try:
        content = queue.artifact(task_id, str(run_id), LIVE_LOG)
    except TaskclusterRestFailure as e:
        if e.status_code != 404:
            raise
        if not follow:
            more = "" if run_state in RESOLVED else " yet (use -f to wait for it)"
            raise click.ClickException(f"task {task_id} run {run_id} has no {LIVE_LOG}{more}") from None
        if run_state in RESOLVED:
            click.echo(f"(run {run_id} ended without a log)", err=True)
            return True
        return False
    if content["storageType"] != "reference":
        data, _ = taskcluster.download.downloadArtifactToBuf(
            taskId=task_id, runId=run_id, name=LIVE_LOG, queueService=queue
        )
        out.write(data)
        out.flush()
        return True
    if _stream(content["url"], out, follow):
        return True
    # The worker no longer serves it: the run has just ended and its stored
    # log is on the way (the next look finds it), or the worker is gone.
    if run_state in RESOLVED:
        raise click.ClickException(f"the live log of task {task_id} run {run_id} is unreachable: {content['url']}")
    return False


def _stream(url: str, out: IO[bytes], follow: bool) -> bool:
    """Copy a live log to ``out``; False if it could not be reached at all."""
    import requests

    try:
        response = requests.get(url, stream=True, timeout=(5, None if follow else LIVE_LOG_IDLE))
    except requests.RequestException:
        return False
    with response:
        if response.status_code != 200:
            return False
        try:
            for chunk in response.iter_content(chunk_size=None):
                out.write(chunk)
                out.flush()
        except requests.RequestException:
            if follow:
                raise click.ClickException("the live log stream was interrupted") from None
            # quiet for LIVE_LOG_IDLE: that is the log so far
    return True


# task groups


@group.command("status")
@click.argument("task_group_id")
@click.option("--once", is_flag=True, help="Show the group as it is now, then exit.")
@click.option("--interval", default=2.0, show_default=True, type=click.FloatRange(0.2), help="Seconds between refreshes.")
@json_option
def group_status(task_group_id: str, once: bool, interval: float, as_json: bool) -> None:
    """A group's tasks and states, live.

    Refreshed until every task is resolved, unless --once.
    """
    queue = api("queue")

    def listing() -> list[dict[str, Any]]:
        return paged(queue.listTaskGroup, "tasks", task_group_id)

    tasks = listing()
    if as_json:
        while not once and not _all_resolved(tasks):
            time.sleep(interval)
            tasks = listing()
        print_json({"taskGroupId": task_group_id, "tasks": tasks})
        return
    if once or _all_resolved(tasks):
        stdout().print(_group_view(task_group_id, tasks))
        return
    with Live(_group_view(task_group_id, tasks), console=stdout(), auto_refresh=False) as live:
        while not _all_resolved(tasks):
            time.sleep(interval)
            tasks = listing()
            live.update(_group_view(task_group_id, tasks), refresh=True)


def _all_resolved(tasks: list[dict[str, Any]]) -> bool:
    return all(t["status"]["state"] in RESOLVED for t in tasks)


def _group_view(task_group_id: str, tasks: list[dict[str, Any]]) -> Group:
    counts: dict[str, int] = {}
    for t in tasks:
        counts[t["status"]["state"]] = counts.get(t["status"]["state"], 0) + 1
    resolved = sum(n for state, n in counts.items() if state in RESOLVED)
    summary = Text.assemble(
        (f"task group {task_group_id}: ", "bold"), f"{resolved}/{len(tasks)} resolved",
        *[piece for state, n in sorted(counts.items()) for piece in (f"  {n} ", state_text(state))],
    )
    rows = table("taskId", "name", "state", "runs", "taskQueueId")
    for t in tasks:
        s = t["status"]
        rows.add_row(s["taskId"], t["task"]["metadata"]["name"], state_text(s["state"]), str(len(s["runs"])),
                     s["taskQueueId"])
    bar = ProgressBar(total=max(len(tasks), 1), completed=resolved, width=40)
    return Group(summary, Text(ui_url(f"/tasks/groups/{task_group_id}")), bar, rows)

