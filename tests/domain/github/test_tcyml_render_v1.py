"""Version 1: JSON-e with Taskcluster-GitHub's context, then its defaults, routes, scopes and order."""

from __future__ import annotations

import json

import pytest

from cairn.domain.github import tcyml
from tests.domain.github.tcyml_support import (
    NOW_ISO,
    ROOT_URL,
    comment_event,
    event,
    payload,
    pull_request_for_comment,
    release_event,
    render,
)

def _context(ev, **kwargs):
    """What a template sees of ``CONTEXT`` (a few keys at once)."""
    text = """
version: 1
tasks:
  - payload:
      tasks_for: {$eval: tasks_for}
      now: {$eval: now}
      root: {$eval: taskcluster_root_url}
      repo: {$eval: taskclusterYmlRepo}
      revision: {$eval: taskclusterYmlRevision}
      vars: {$eval: vars}
      action: {$if: '"action" in event', then: {$eval: 'event.action'}}
      same: {$eval: 'as_slugid("a") == as_slugid("a")'}
      differ: {$eval: 'as_slugid("a") != as_slugid("b")'}
      comment: {$if: 'tasks_for == "github-issue-comment"', then: {$eval: 'taskcluster_comment'}}
      event_comment: {$if: 'tasks_for == "github-issue-comment"', then: {$eval: 'event.taskcluster_comment'}}
"""
    return render(text, ev, **kwargs).tasks[0][1]["payload"]


def test_the_context_of_a_push():
    seen = _context(event("push.none.4"))
    assert seen == {
        "tasks_for": "github-push", "now": NOW_ISO, "root": ROOT_URL,
        "repo": "https://github.com/Codertocat/Hello-World", "revision": "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
        "vars": event("push.none.4").variables, "same": True, "differ": True,
    }


def test_the_context_of_an_untrusted_pull_request_and_of_a_comment():
    assert _context(event("pull_request.closed.0"), untrusted=True)["tasks_for"] == "github-pull-request-untrusted"
    assert _context(event("pull_request.closed.0"))["action"] == "closed"
    ev = comment_event("/taskcluster retry").with_pull_request(pull_request_for_comment())
    seen = _context(ev)
    assert (seen["tasks_for"], seen["comment"], seen["event_comment"]) == ("github-issue-comment", "retry", "retry")
    assert _context(ev, comment="other")["comment"] == "other"


def test_untrusted_only_changes_pull_requests():
    assert _context(event("push.none.4"), untrusted=True)["tasks_for"] == "github-push"


def test_a_sole_task_is_its_own_group_like_a_decision_task():
    rendered = render("version: 1\ntasks:\n  - {payload: {}}\n", event("push.none.4"))
    [(task_id, task)] = rendered.tasks
    assert task == {"schedulerId": "taskcluster-github", "taskGroupId": task_id, "created": NOW_ISO,
                    "payload": {}, "routes": ["statuses"]}
    assert rendered.task_group_id == task_id
    assert rendered.scopes == ["assume:repo:github.com/Codertocat/Hello-World:branch:master",
                               "queue:route:statuses", "queue:scheduler-id:taskcluster-github"]
    assert (rendered.reporting, rendered.auto_cancel_previous_checks, rendered.version) == (None, True, 1)


def test_a_sole_task_with_either_id_gets_the_other_from_it():
    ev = event("push.none.4")
    [(task_id, task)] = render("version: 1\ntasks: [{taskId: abcdefghijklmnopqrstuv}]\n", ev).tasks
    assert task_id == task["taskGroupId"] == "abcdefghijklmnopqrstuv" and "taskId" not in task
    [(task_id, task)] = render("version: 1\ntasks: [{taskGroupId: abcdefghijklmnopqrstuv}]\n", ev).tasks
    assert task_id == task["taskGroupId"] == "abcdefghijklmnopqrstuv"
    both = "version: 1\ntasks: [{taskId: aaaaaaaaaaaaaaaaaaaaaa, taskGroupId: bbbbbbbbbbbbbbbbbbbbbb}]\n"
    [(task_id, task)] = render(both, ev).tasks
    assert (task_id, task["taskGroupId"]) == ("aaaaaaaaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbbbbbbbb")


def test_several_tasks_share_a_group_that_is_none_of_them():
    rendered = render("version: 1\ntasks: [{n: 1}, {n: 2}, {n: 3, taskGroupId: own}]\n", event("push.none.4"))
    ids = [task_id for task_id, _ in rendered.tasks]
    groups = [task["taskGroupId"] for _, task in rendered.tasks]
    assert len(set(ids)) == 3 and groups[0] == groups[1] != groups[2] == "own"
    assert groups[0] not in ids and rendered.task_group_id == groups[0]


def test_the_template_can_set_created_scheduler_id_and_routes():
    text = """
version: 1
reporting: checks-v1
autoCancelPreviousChecks: false
tasks:
  - created: '2020-01-01T00:00:00.000Z'
    schedulerId: my-scheduler
    routes: [checks, index.x.y, index.x.y]
    deadline: {$fromNow: '2 hours'}
"""
    rendered = render(text, event("push.none.4"))
    [(_, task)] = rendered.tasks
    assert task["created"] == "2020-01-01T00:00:00.000Z" and task["schedulerId"] == "my-scheduler"
    assert task["routes"] == ["checks", "index.x.y"]  # deduplicated, the reporting route once
    assert task["deadline"] == "2026-03-04T07:06:07.890Z"  # $fromNow counts from `now`
    assert rendered.reporting == "checks-v1" and not rendered.auto_cancel_previous_checks
    assert rendered.scopes[1] == "queue:route:checks"


def test_no_deadline_or_expiry_is_invented():
    [(_, task)] = render("version: 1\ntasks: [{}]\n", event("push.none.4")).tasks
    assert "deadline" not in task and "expires" not in task


def test_ids_are_a_function_of_the_seed():
    text = "version: 1\ntasks: [{taskId: {$eval: 'as_slugid(\"decision\")'}}, {}, {}]\n"
    ev = event("push.none.4")
    first, again, other = render(text, ev), render(text, ev), render(text, ev, id_seed="delivery-2")
    assert first.tasks == again.tasks
    assert {i for i, _ in first.tasks}.isdisjoint({i for i, _ in other.tasks})
    unseeded = [render(text, ev, id_seed=None) for _ in range(2)]
    assert unseeded[0].tasks[0][0] != unseeded[1].tasks[0][0]


def test_task_group_id_fixes_the_default_group():
    ev = event("push.none.4")
    [(task_id, task)] = render("version: 1\ntasks: [{}]\n", ev, task_group_id="fixedgroupfixedgroup00").tasks
    assert task_id == task["taskGroupId"] == "fixedgroupfixedgroup00"
    rendered = render("version: 1\ntasks: [{}, {}]\n", ev, task_group_id="fixedgroupfixedgroup00")
    assert {t["taskGroupId"] for _, t in rendered.tasks} == {"fixedgroupfixedgroup00"}


def test_tasks_come_after_their_dependencies():
    text = """
version: 1
tasks:
  - {taskId: {$eval: 'as_slugid("test")'}, dependencies: [{$eval: 'as_slugid("build")'}, elsewhere]}
  - {taskId: {$eval: 'as_slugid("lint")'}}
  - {taskId: {$eval: 'as_slugid("build")'}, dependencies: [{$eval: 'as_slugid("fetch")'}]}
  - {taskId: {$eval: 'as_slugid("fetch")'}}
"""
    rendered = render(text, event("push.none.4"))
    names = {task_id: i for i, (task_id, _) in enumerate(rendered.tasks)}
    order = [json.dumps(task.get("dependencies")) for _, task in rendered.tasks]
    assert len(order) == 4
    fetch, build, test = (rendered.tasks[i] for i in (0, 1, 2))
    assert "dependencies" not in fetch[1] and build[1]["dependencies"] == [fetch[0]]
    assert test[1]["dependencies"][0] == build[0] and names[fetch[0]] < names[build[0]] < names[test[0]]


def test_integral_floats_become_ints():
    text = "version: 1\ntasks: [{payload: {maxRunTime: {$eval: '7200 / 2'}, ratio: {$eval: '1 / 4'}}, priority: x}]\n"
    [(_, task)] = render(text, event("push.none.4")).tasks
    assert task["payload"] == {"maxRunTime": 3600, "ratio": 0.25}
    assert isinstance(task["payload"]["maxRunTime"], int)


def test_tasks_may_be_a_template_that_renders_to_a_list():
    text = """
version: 1
tasks:
  $let: {names: [a, b]}
  in:
    $map: {$eval: names}
    each(n): {metadata: {name: '${n}'}}
"""
    assert [t["metadata"]["name"] for _, t in render(text, event("push.none.4")).tasks] == ["a", "b"]


@pytest.mark.parametrize("text", [
    "version: 1\n", "version: 1\ntasks: []\n",
    "version: 1\ntasks:\n  - $if: 'tasks_for == \"github-release\"'\n    then: {}\n",
    "version: 1\ntasks: {$if: 'false', then: [{}]}\n",
])
def test_nothing_to_create(text):
    rendered = render(text, event("push.none.4"))
    assert rendered.tasks == [] and rendered.task_group_id is None


def test_hooks_are_passed_through_unrendered():
    text = "version: 1\nhooks:\n  - name: proj/decision\n    context: {x: '${not.rendered}'}\n"
    rendered = render(text, event("push.none.4"))
    assert rendered.hooks == [{"name": "proj/decision", "context": {"x": "${not.rendered}"}}]
    assert rendered.tasks == []


def test_release_and_comment_roles():
    assert render("version: 1\ntasks: [{}]\n", release_event("created")).role == \
        "repo:github.com/Codertocat/Hello-World:release:created"
    ev = comment_event().with_pull_request(pull_request_for_comment())
    assert render("version: 1\ntasks: [{}]\n", ev, untrusted=True).scopes[0] == \
        "assume:repo:github.com/Codertocat/Hello-World:pull-request"
    pr = render("version: 1\ntasks: [{}]\n", event("pull_request.opened.0"), untrusted=True)
    assert (pr.role, pr.tasks_for) == ("repo:github.com/Codertocat/Hello-World:pull-request-untrusted",
                                       "github-pull-request-untrusted")


def _error(text, ev=None, **kwargs):
    with pytest.raises(tcyml.ConfigError) as caught:
        render(text, ev or event("push.none.4"), **kwargs)
    return caught.value


def test_yaml_errors():
    err = _error("version: 1\ntasks: [\n")
    assert err.kind == "yaml" and str(err).startswith("`.taskcluster.yml` is not valid YAML:")
    assert "line 3" in str(err)


@pytest.mark.parametrize(("text", "words"), [
    ("version: 0\ntasks: []\n", "no longer supported"),
    ("version: 3\n", "supported versions are 1"),
    ("version: '1'\n", "supported versions are 1"),
    ("version: true\n", "supported versions are 1"),
    ("tasks: []\n", "`version: None`"),
])
def test_version_errors(text, words):
    err = _error(text)
    assert err.kind == "version" and words in str(err)


@pytest.mark.parametrize(("text", "words"), [
    ("- a list\n", "must be a YAML mapping"),
    ("version: 1\ntask: []\n", "unknown top-level key(s) `task`"),
    ("version: 1\npolicy: {pullRequests: all}\n", "`policy.pullRequests`: 'all' is not one of"),
    ("version: 1\nreporting: checks-v2\n", "`reporting`"),
    ("version: 1\ntasks: 3\n", "`tasks`"),
    ("version: 1\nautoCancelPreviousChecks: 'no'\n", "`autoCancelPreviousChecks`"),
    ("version: 1\nhooks: [{context: {}}]\n", "'name' is a required property"),
])
def test_schema_errors(text, words):
    err = _error(text)
    assert err.kind == "schema" and words in str(err), str(err)


@pytest.mark.parametrize(("text", "words"), [
    ("version: 1\ntasks: [{$eval: nothing}]\n", "InterpreterError"),
    ("version: 1\ntasks: [{$if: 'tasks_for ==', then: {}}]\n", "SyntaxError"),
    ("version: 1\ntasks: [{x: {$eval: 'event.no.such.key'}}]\n", "InterpreterError"),
    ("version: 1\ntasks: [{$unknown: 1}]\n", "TemplateError"),
])
def test_json_e_errors(text, words):
    err = _error(text)
    assert err.kind == "json-e" and words in str(err) and "Rendering `.taskcluster.yml` with JSON-e failed" in str(err)


@pytest.mark.parametrize(("text", "words"), [
    ("version: 1\ntasks: {$eval: '{\"a\": 1}'}\n", "must be array of tasks"),
    ("version: 1\ntasks: [{$eval: '3'}]\n", "`tasks[0]` rendered to int"),
    ("version: 1\ntasks: [{taskId: 5}]\n", "must be a string"),
    ("version: 1\ntasks: [{taskId: same}, {taskId: same}]\n", "Two tasks have the taskId `same`"),
    ("version: 1\ntasks: [{taskId: a, dependencies: [b]}, {taskId: b, dependencies: [a]}]\n", "form a cycle"),
])
def test_task_list_errors(text, words):
    err = _error(text)
    assert err.kind == "tasks" and words in str(err), str(err)


def test_a_branch_name_must_be_printable_ascii():
    body = payload("push.none.4")
    body["ref"] = "refs/heads/café"
    err = _error("version: 1\ntasks: []\n", tcyml.interpret("push", body))
    assert str(err) == "Must have only ascii-printable chars in branch names!"


def test_events_that_cannot_be_rendered_are_the_callers_mistake():
    with pytest.raises(ValueError):
        render("version: 1\n", event("ping.none.0"))
    with pytest.raises(ValueError):
        render("version: 1\n", event("release.published.0"))  # sha not resolved


def test_error_text_is_a_comment():
    err = _error("version: 1\ntask: []\n")
    assert tcyml.error_comment(err).startswith("<details>\n\n<summary>Uh oh! Looks like an error!</summary>")


@pytest.mark.parametrize(("text", "words"), [
    ("version: 1\ntasks: [{x: .inf}]\n", "`tasks[0].x` is inf, which JSON cannot hold"),
    ("version: 1\ntasks: [{x: !!binary aGVsbG8=}]\n", "is a YAML bytes"),
    ("version: 1\ntasks: [{x: !!set {a}}]\n", "is a YAML set"),
    ("version: 1\ntasks: [{x: !!python/object:os.system {}}]\n", "could not determine a constructor"),
    ("version: 1\ntasks: [{x: " + "[" * 1000 + "]" * 1000 + "}]\n", "`.taskcluster.yml`"),
    ("version: 1\na: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
     "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
     "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n",
     "expands to more than 200000 values"),
])
def test_yaml_that_is_not_json(text, words):
    err = _error(text)
    assert err.kind == "yaml" and words in str(err), str(err)


def test_yaml_reads_like_json():
    text = "version: 1\ntasks: [{1: 2, created: 2020-01-01, x: !!timestamp 2020-01-02}]\n"
    [(_, task)] = render(text, event("push.none.4")).tasks
    assert (task["1"], task["created"], task["x"]) == (2, "2020-01-01", "2020-01-02")
