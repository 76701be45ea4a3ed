"""Rendering a ``.taskcluster.yml`` into the tasks to create, as Taskcluster-GitHub's ``intree`` does.

Version 1 is rendered with JSON-e over the whole file (less ``version`` and
``hooks``); version 2 (the trigger format) by substitution. Both then go
through the same compilation (Taskcluster's ``VersionOne.compileTasks``):
default task ids (a sole task is its own group, as a decision task), one
task group, ``created``, ``schedulerId``, the ``statuses``/``checks`` route,
and an order in which every task comes after the tasks it depends on.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

import jsone
import slugid

from cairn.domain.github import tcyml
from cairn.domain.github.tcyml import ConfigError, config, policy, triggers
from cairn.domain.templating import derived_task_id, integral_floats_as_ints
from cairn.domain.timestamps import iso, shift

PROJECT_FILE = ".taskcluster.yml"
#: Context keys that are Cairn's: RFC 182's project ``context`` can never set them, even when absent.
RESERVED = frozenset({
    "tasks_for", "event", "as_slugid", "now", "taskcluster_root_url", "taskcluster_comment",
    "taskclusterYmlRepo", "taskclusterYmlRevision", tcyml.VARS_KEY,
})
#: The deadline of a trigger-format task that sets none.
DEFAULT_DEADLINE = timedelta(days=1)
#: Top-level keys whose value in the project file wins over the referenced file's.
PROJECT_WINS = ("policy", "reporting", "autoCancelPreviousChecks")


class Ids:
    """Generated ids: a function of ``seed`` when there is one (so a repeated rendering names the same tasks)."""

    def __init__(self, seed: str | None):
        self.seed = seed
        self.labels: dict[str, str] = {}
        self.count = 0

    def _new(self, *parts: str) -> str:
        return derived_task_id(self.seed, *parts) if self.seed is not None else slugid.nice()

    def as_slugid(self, label: Any) -> str:
        key = label if isinstance(label, str) else repr(label)
        if key not in self.labels:
            self.labels[key] = self._new("as_slugid", key)
        return self.labels[key]

    def task_id(self) -> str:
        self.count += 1
        return self._new("task", str(self.count))

    def group_id(self) -> str:
        return self._new("group")


def _check_branch(event: tcyml.GithubEvent) -> None:
    branch = event.branch or ""
    if any(not 0x20 <= ord(c) <= 0x7E for c in branch):
        raise ConfigError("Must have only ascii-printable chars in branch names!", "tasks")


def _render_v1(cfg: Mapping[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    template = {key: value for key, value in cfg.items() if key not in ("version", "hooks")}
    try:
        rendered = jsone.render(copy.deepcopy(template), context)
    except jsone.JSONTemplateError as e:
        raise ConfigError(f"Rendering `.taskcluster.yml` with JSON-e failed:\n\n```\n{e}\n```", "json-e") from e
    # json-e's parser fails with AttributeError on an expression cut short (`nonsense(`).
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, RecursionError, OverflowError) as e:
        raise ConfigError(f"Rendering `.taskcluster.yml` with JSON-e failed:\n\n```\n{e!r}\n```", "json-e") from e
    return rendered if isinstance(rendered, dict) else {}


def _toposort(tasks: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    """Dependencies first, otherwise the file's order; dependencies outside the list are the queue's business."""
    by_id = dict(tasks)
    done: set[str] = set()
    visiting: set[str] = set()
    ordered: list[tuple[str, dict[str, Any]]] = []

    def visit(task_id: str, path: list[str]) -> None:
        if task_id in done:
            return
        if task_id in visiting:
            cycle = " → ".join([*path[path.index(task_id):], task_id])
            raise ConfigError(f"The tasks' dependencies form a cycle: {cycle}", "tasks")
        visiting.add(task_id)
        deps = by_id[task_id].get("dependencies")
        for dep in deps if isinstance(deps, list) else ():
            if isinstance(dep, str) and dep in by_id:
                visit(dep, [*path, task_id])
        visiting.discard(task_id)
        done.add(task_id)
        ordered.append((task_id, by_id[task_id]))

    for task_id, _ in tasks:
        visit(task_id, [])
    return ordered


def compile_tasks(tasks: list[dict[str, Any]], route: str, now: datetime, ids: Ids,
                  task_group_id: str | None) -> list[tuple[str, dict[str, Any]]]:
    if not tasks:
        return []
    if len(tasks) == 1:
        sole = tasks[0]
        if "taskId" in sole and "taskGroupId" in sole:
            default_id, default_group = None, None
        elif "taskId" in sole:
            default_id, default_group = None, sole["taskId"]
        elif "taskGroupId" in sole:
            default_id, default_group = sole["taskGroupId"], None
        else:
            default_id = task_group_id or ids.task_id()
            default_group = default_id
    else:
        default_id, default_group = ids.task_id(), task_group_id or ids.group_id()
    compiled: list[tuple[str, dict[str, Any]]] = []
    for task in tasks:
        routes = task.get("routes") if isinstance(task.get("routes"), list) else []
        task = {**task, "routes": list(dict.fromkeys([*routes, route]))}
        task = {"taskId": default_id, "taskGroupId": default_group, "created": iso(now), **task}
        default_id = ids.task_id()
        task_id = task.pop("taskId")
        if not isinstance(task_id, str):
            raise ConfigError(f"A task's `taskId` must be a string, not {task_id!r}.", "tasks")
        if any(task_id == seen for seen, _ in compiled):
            raise ConfigError(f"Two tasks have the taskId `{task_id}`.", "tasks")
        compiled.append((task_id, {"schedulerId": tcyml.SCHEDULER_ID, **task}))
    return _toposort(compiled)


def _project_repo(event: tcyml.GithubEvent) -> str:
    url = (event.body.get("repository") or {}).get("html_url")
    return url if isinstance(url, str) and url else f"https://github.com/{event.owner}/{event.repo}"


def render(text: str, event: tcyml.GithubEvent, *, root_url: str, now: datetime,
           fetch_file: Callable[[str, str, str, str], tcyml.FetchedFile], untrusted: bool = False,
           comment: str | None = None, task_group_id: str | None = None,
           id_seed: str | None = None) -> tcyml.Rendered:
    if event.tasks_for is None:
        raise ValueError(f"a {event.event_name} event ({event.no_build_reason}) has nothing to render")
    if not event.sha:
        raise ValueError("the event's sha must be resolved first (with_sha / with_pull_request)")
    comment = comment if comment is not None else event.comment
    tasks_for = tcyml.PULL_REQUEST_UNTRUSTED if untrusted and event.tasks_for == tcyml.PULL_REQUEST \
        else event.tasks_for

    project = config.parse_yaml(text, PROJECT_FILE)
    version = config.validate(project, PROJECT_FILE)
    config.check_project(project, PROJECT_FILE)
    _check_branch(event)
    cfg, repo_url, revision, extra, reference = project, _project_repo(event), event.sha, {}, None
    if "config-from" in project:
        reference = config.parse_reference(project["config-from"])
        try:
            fetched = fetch_file(reference.owner, reference.repo, reference.path, reference.ref)
        except Exception as e:  # noqa: BLE001 - whatever the fetch raises is the file's problem to report
            raise ConfigError(f"`config-from: {reference}`: the referenced file could not be read: {e}",
                              "config-from") from e
        cfg = config.parse_yaml(fetched.text, str(reference))
        version = config.validate(cfg, str(reference))
        config.check_referenced(cfg, str(reference))
        repo_url, revision = reference.repo_url, fetched.revision
        extra = {key: value for key, value in (project.get("context") or {}).items() if key not in RESERVED}

    ids = Ids(id_seed)
    variables = event.variables
    if version == 1:
        body = copy.deepcopy(dict(event.body))
        if comment is not None:
            body["taskcluster_comment"] = comment
        context = {
            **extra,
            "tasks_for": tasks_for,
            "event": body,
            "as_slugid": ids.as_slugid,
            "now": iso(now),
            "taskcluster_root_url": root_url,
            "taskclusterYmlRepo": repo_url,
            "taskclusterYmlRevision": revision,
            tcyml.VARS_KEY: variables,
        }
        if comment is not None:
            context["taskcluster_comment"] = comment
        result = _render_v1(cfg, context)
        tasks = result.get("tasks", [])
        hooks = list(cfg.get("hooks") or [])
    else:
        result = dict(cfg)
        # Without JSON-e there is no $fromNow: a trigger-format task gets a deadline a day after `now`.
        tasks = [{"deadline": iso(shift(now, DEFAULT_DEADLINE)), **task}
                 for task in triggers.render(cfg, event, extra)]
        hooks = []
    for key in PROJECT_WINS:
        if reference is not None and key in project:
            result[key] = project[key]

    if tasks is None:
        tasks = []
    if not isinstance(tasks, list):
        raise ConfigError("tasks field of .taskcluster.yml must be array of tasks or empty array", "tasks")
    for i, task in enumerate(tasks):
        if not isinstance(task, dict):
            raise ConfigError(f"`tasks[{i}]` rendered to {type(task).__name__} {task!r:.80}, not a task "
                              "definition (an object).", "tasks")
    tasks = integral_floats_as_ints(tasks)

    reporting = "checks-v1" if result.get("reporting") else None
    route = tcyml.CHECK_ROUTE if reporting else tcyml.STATUS_ROUTE
    compiled = compile_tasks(tasks, route, now, ids, task_group_id)
    role = event.role(untrusted=tasks_for == tcyml.PULL_REQUEST_UNTRUSTED)
    raw_policy = result.get("policy")
    return tcyml.Rendered(
        tasks=compiled,
        task_group_id=compiled[0][1].get("taskGroupId") if compiled else None,
        scopes=[f"assume:{role}", f"queue:route:{route}", f"queue:scheduler-id:{tcyml.SCHEDULER_ID}"],
        role=role,
        tasks_for=tasks_for,
        policy=policy.policy_from(raw_policy if isinstance(raw_policy, Mapping) else None),
        reporting=reporting,
        auto_cancel_previous_checks=result.get("autoCancelPreviousChecks") is not False,
        config_repo=repo_url,
        config_revision=revision,
        version=version,
        hooks=hooks,
        config_from=str(reference) if reference is not None else None,
    )

