"""Reporting builds back to GitHub: commit statuses per task group, or check runs per task. A consumer of the log.

Without ``reporting`` (Taskcluster's statuses): one commit status on the
build's head sha, context ``Taskcluster (<event>)`` — ``pending`` once the
tasks are created, ``failure`` as soon as a task fails or ends in exception,
``pending`` again when a task runs again, and when the group resolves
``success`` (or ``failure``), each linking to the group's page in Cairn's UI.

With ``reporting: checks-v1``: one check run per task, named after the task,
``queued`` → ``in_progress`` → ``completed`` with the conclusion Taskcluster
maps the resolution to, and in its output the links, the run's times and
the tail of the task's log. A rerun gets a check run of its own. Check run
ids are recorded (``domain/github/check_runs.py``), so a restart updates
rather than creates; a crash between GitHub creating a check run and its id
being recorded is the one window in which a second one can appear.

Every build moves through its states here (``GithubBuild.StateChanged``): a
cancelled build stays cancelled. The guarantee is at least once: a status
posted again is the same status, and the state change is recorded after the
post, so a crash never leaves GitHub without the last word.
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from cairn.consumers.github.client import GithubError, GithubUnavailable, Installation
from cairn.consumers.log_follower import Guarantee, LoggedEvent, Unavailable
from cairn.domain.aggregate import acting_as
from cairn.domain.github.check_runs import CheckRuns
from cairn.domain.github.model import GithubBuild
from cairn.domain.github.service import GithubService
from cairn.domain.queue.task import Task
from cairn.domain.queue.task_group import TaskGroup
from cairn.domain.timestamps import iso, utcnow
from cairn.projections.store.moved_topics import topics_of

log = logging.getLogger("cairn.github")

NAME = "github-reporter"
ACTOR = "cairn/github"
STATUS_CONTEXT = "Taskcluster"
CHECKS = "checks-v1"
#: Taskcluster's mapping of a resolution (reasonResolved, else state) to a check run's conclusion.
CONCLUSIONS = {
    "completed": "success", "failed": "failure", "exception": "failure", "deadline-exceeded": "timed_out",
    "canceled": "cancelled", "claim-expired": "failure", "worker-shutdown": "neutral",
    "malformed-payload": "action_required", "resource-unavailable": "failure", "internal-error": "failure",
    "intermittent-task": "neutral",
}
LOG_HEAD, LOG_TAIL, MAX_OUTPUT = 20, 200, 60000
REMEMBERED = 50_000
ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


def group_url(root_url: str, task_group_id: str) -> str:
    return f"{root_url.rstrip('/')}/tasks/groups/{task_group_id}"


def task_url(root_url: str, task_id: str) -> str:
    return f"{root_url.rstrip('/')}/tasks/{task_id}"


def log_excerpt(text: str, budget: int) -> str:
    """The first and last lines of a log, without colours, in at most ``budget`` characters."""
    lines = [ANSI.sub("", line) for line in text.splitlines()]
    if len(lines) > LOG_HEAD + LOG_TAIL:
        hidden = len(lines) - LOG_HEAD - LOG_TAIL
        lines = lines[:LOG_HEAD] + ["", f"...({hidden} lines hidden)...", ""] + lines[-LOG_TAIL:]
    excerpt = "\n".join(lines)
    return excerpt if len(excerpt) <= budget else excerpt[-budget:].split("\n", 1)[-1]


class BuildReporter:
    name = NAME
    guarantee: Guarantee = "at-least-once"
    topics: tuple[str, ...] = topics_of([
        GithubBuild.TasksCreated, Task.Defined, Task.RunPending, Task.RunClaimed, Task.RunResolved,
        Task.UnscheduledResolved, TaskGroup.Resolved,
    ])

    def __init__(self, event_log: Any, service: GithubService, installation: Callable[[int], Installation],
                 checks: CheckRuns, group_states: Callable[[str], list[str]], log_tail: Callable[[str, int], str | None],
                 root_url: str):
        self.log = event_log
        self.service = service
        self.installation = installation
        self.checks = checks
        self.group_states = group_states
        self.log_tail = log_tail
        self.root_url = root_url
        # Whether a task group is a GitHub build (its build is recorded before its tasks), and tasks' groups.
        self._github_groups: OrderedDict[str, bool] = OrderedDict()
        self._task_groups: OrderedDict[str, str] = OrderedDict()

    def handle(self, session: Any, batch: list[LoggedEvent]) -> None:
        with acting_as(ACTOR):
            for logged in batch:
                try:
                    self.report(logged.event)
                except GithubUnavailable as e:
                    raise Unavailable(str(e)) from e
                except GithubError as e:
                    log.warning("GitHub refused a report for %s: %s", logged.event.originator_id, e)

    def _group_of(self, e: Any) -> str | None:
        if isinstance(e, Task.Defined):
            return e.definition.get("taskGroupId")
        return self._task_groups.get(e.originator_id)

    def _remember_group(self, task_key: str, task_group_id: str) -> None:
        self._task_groups[task_key] = task_group_id
        if len(self._task_groups) > REMEMBERED:
            self._task_groups.popitem(last=False)

    def _build_of(self, task_group_id: str) -> GithubBuild | None:
        if self._github_groups.get(task_group_id) is False:
            return None
        build = self.service.build(task_group_id)
        self._github_groups[task_group_id] = build is not None
        if len(self._github_groups) > REMEMBERED:
            self._github_groups.popitem(last=False)
        return build

    def report(self, e: Any) -> None:
        if isinstance(e, GithubBuild.TasksCreated):
            build = self.service.build(e.originator_id.split("/", 1)[1])
            if build is not None and build.reporting != CHECKS and build.state == "pending":
                self._status(build, "pending", f"TaskGroup: Pending (for {build.event_type})")
            return
        if isinstance(e, TaskGroup.Resolved):
            build = self._build_of(e.originator_id.split("/", 1)[1])
            if build is not None:
                self._group_resolved(build)
            return
        group = self._group_of(e)
        if group is not None and self._github_groups.get(group) is False:
            return  # most tasks are not GitHub's: known without loading them
        task = self.log.repository.get(e.originator_id, version=e.originator_version)
        self._remember_group(e.originator_id, task.task_group_id)
        build = self._build_of(task.task_group_id)
        if build is None:
            return
        if isinstance(e, (Task.RunPending, Task.RunClaimed)) and not task.resolved and \
                build.state not in ("pending", "cancelled"):
            # A task runs again (a rerun, from GitHub or anywhere): the build is pending again.
            if build.reporting != CHECKS:
                self._status(build, "pending", "TaskGroup: pending")
            self._move(build, "pending")
        if build.reporting == CHECKS:
            self._check_run(build, task, e)
        else:
            self._task_status(build, task, e)

    # statuses

    def _status(self, build: GithubBuild, state: str, description: str) -> None:
        gh = self.installation(build.installation_id)
        gh.create_status(build.organization, build.repository, build.sha, {
            "state": state, "target_url": group_url(self.root_url, build.task_group_id),
            "description": description, "context": f"{STATUS_CONTEXT} ({build.event_type.split('.')[0]})",
        })

    def _move(self, build: GithubBuild, state: str) -> None:
        self.service.set_build_state(build.task_group_id, state, utcnow())

    def _task_status(self, build: GithubBuild, task: Task, e: Any) -> None:
        if build.state == "cancelled":
            return
        if isinstance(e, (Task.RunResolved, Task.UnscheduledResolved)) and task.state in ("failed", "exception"):
            if build.state != "failure":
                self._status(build, "failure", "TaskGroup: failure")
                self._move(build, "failure")

    def _group_resolved(self, build: GithubBuild) -> None:
        states = self.group_states(build.task_group_id)
        if any(s in ("failed", "exception") for s in states):
            state = "failure"
        elif any(s in ("unscheduled", "pending", "running") for s in states):
            state = "pending"
        else:
            state = "success"
        if build.state in ("cancelled", state):
            return  # a cancelled build says no more; GitHub already shows this state
        if build.reporting != CHECKS:
            self._status(build, state, f"TaskGroup: {state}")
        self._move(build, state)

    # check runs

    def _check_run(self, build: GithubBuild, task: Task, e: Any) -> None:
        if isinstance(e, TaskGroup.Resolved):
            return
        run_id = getattr(e, "run_id", None)
        if run_id is None:
            run_id = max(0, len(task.runs) - 1)
        run = task.runs[run_id] if run_id < len(task.runs) else {}
        reason = run.get("reasonResolved") if isinstance(e, (Task.RunResolved, Task.UnscheduledResolved)) else None
        state = run.get("state") or "pending"
        conclusion = CONCLUSIONS.get(reason or state) if reason else None
        if reason == "intermittent-task" and task.retries_left == 0:
            conclusion = "failure"
        status = "completed" if conclusion else ("in_progress" if state == "running" else "queued")
        checks = self.checks.of(task.task_id)
        check_run_id = checks.check_run_id(run_id) if checks is not None else None
        if checks is not None and checks.already_reported(run_id, status, conclusion):
            return
        body = self._check_body(build, task, run_id, run, status, conclusion)
        gh = self.installation(build.installation_id)
        if check_run_id is None:
            created = gh.create_check_run(build.organization, build.repository, {
                "name": task.definition.get("metadata", {}).get("name", task.task_id), "head_sha": build.sha,
                "external_id": task.task_id, "details_url": task_url(self.root_url, task.task_id), **body,
            })
            self.checks.record_created(task.task_id, build.task_group_id, run_id, int(created["id"]), status,
                                       conclusion)
        else:
            gh.update_check_run(build.organization, build.repository, check_run_id, body)
            self.checks.record_reported(task.task_id, run_id, status, conclusion)

    def _check_body(self, build: GithubBuild, task: Task, run_id: int, run: dict[str, Any], status: str,
                    conclusion: str | None) -> dict[str, Any]:
        metadata = task.definition.get("metadata", {})
        title = f"{STATUS_CONTEXT} ({build.event_type.split('.')[0]})"
        summary = str(metadata.get("description", ""))
        log_url = f"{task_url(self.root_url, task.task_id)}/runs/{run_id}/logs/live/public/logs/live.log"
        text = (f"[View task in Cairn]({task_url(self.root_url, task.task_id)}) | [View logs in Cairn]({log_url})"
                f" | [View task group in Cairn]({group_url(self.root_url, build.task_group_id)})\n")
        if run:
            text += "\n".join([
                "### Task Status", f"Started: {run.get('started') or 'n/a'}", f"Resolved: {run.get('resolved') or 'n/a'}",
                f"Task Status: **{run.get('state', 'n/a')}**", f"Reason Resolved: **{run.get('reasonResolved') or 'n/a'}**",
                f"TaskId: **{task.task_id}**", f"RunId: **{run_id}**", "",
            ])
        if status == "completed":
            tail = self.log_tail(task.task_id, run_id)
            budget = MAX_OUTPUT - len(title) - len(summary) - len(text) - 40
            if tail and budget > 0:
                text += "\n---\n\n```bash\n" + log_excerpt(tail, budget) + "\n```"
        body: dict[str, Any] = {"status": status, "output": {"title": title, "summary": summary, "text": text}}
        if run.get("started"):
            body["started_at"] = run["started"]
        if status == "completed":
            body["conclusion"] = conclusion
            body["completed_at"] = run.get("resolved") or iso(utcnow())
        return body
