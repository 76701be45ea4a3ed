"""RFC 182: ``config-from`` renders a file from another repository, with the project's ``context``."""

from __future__ import annotations

import pytest

from cairn.domain.github import tcyml
from tests.domain.github.tcyml_support import Files, event, render

REF = ("mozilla", "shared-ci", "taskcluster/github.yml", "v2")
REVISION = "abcdef0123456789abcdef0123456789abcdef01"
REMOTE = """
version: 1
policy: {pullRequests: public}
reporting: checks-v1
tasks:
  - $if: 'tasks_for == "github-push"'
    then:
      metadata:
        name: '${project_name} decision'
        source: '${taskclusterYmlRepo}/raw/${taskclusterYmlRevision}/taskcluster/github.yml'
      scopes: {$eval: scopes}
      payload:
        tasks_for: {$eval: tasks_for}
        revision: '${vars.revision}'
"""
PROJECT = """
version: 1
config-from: github.com/mozilla/shared-ci/taskcluster/github.yml@v2
context:
  project_name: mozillavpn
  scopes: [secrets:get:project/mozillavpn/*]
"""


def _files(text=REMOTE):
    return Files({REF: (text, REVISION)})


def test_the_referenced_file_is_rendered_with_the_projects_context():
    files = _files()
    rendered = render(PROJECT, event("push.none.4"), files)
    assert files.calls == [REF]
    [(_, task)] = rendered.tasks
    assert task["metadata"] == {
        "name": "mozillavpn decision",
        "source": f"https://github.com/mozilla/shared-ci/raw/{REVISION}/taskcluster/github.yml",
    }
    assert task["scopes"] == ["secrets:get:project/mozillavpn/*"]
    assert task["payload"] == {"tasks_for": "github-push", "revision": "6113728f27ae82c7b1a177c8d03f9e96e0adf246"}
    assert (rendered.config_repo, rendered.config_revision) == ("https://github.com/mozilla/shared-ci", REVISION)
    assert rendered.config_from == "github.com/mozilla/shared-ci/taskcluster/github.yml@v2"
    # The referenced file's policy and reporting apply when the project has none.
    assert rendered.reporting == "checks-v1" and rendered.policy == tcyml.Policy("public")
    assert task["routes"] == ["checks"]


def test_cairns_keys_always_win_over_the_context():
    project = PROJECT + "  tasks_for: github-release\n  event: {forged: true}\n  vars: {revision: forged}\n" \
                        "  now: '2000-01-01T00:00:00.000Z'\n  taskclusterYmlRevision: forged\n" \
                        "  taskcluster_comment: forged\n"
    remote = """
version: 1
tasks:
  - payload:
      tasks_for: {$eval: tasks_for}
      forged: {$eval: '"forged" in event'}
      revision: {$eval: vars.revision}
      now: {$eval: now}
      yml: {$eval: taskclusterYmlRevision}
      comment: {$eval: '"taskcluster_comment" in {"a": 1}'}
"""
    [(_, task)] = render(project, event("push.none.4"), _files(remote)).tasks
    assert task["payload"] == {"tasks_for": "github-push", "forged": False,
                               "revision": "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
                               "now": "2026-03-04T05:06:07.890Z", "yml": REVISION, "comment": False}
    with pytest.raises(tcyml.ConfigError, match="unknown context value taskcluster_comment"):
        render(project, event("push.none.4"),
               _files("version: 1\ntasks: [{x: {$eval: taskcluster_comment}}]\n"))


def test_the_project_files_policy_reporting_and_cancelling_win():
    project = PROJECT + "policy: {pullRequests: collaborators_quiet}\nautoCancelPreviousChecks: false\n"
    rendered = render(project, event("push.none.4"), _files())
    assert rendered.policy == tcyml.Policy("collaborators_quiet")
    assert rendered.reporting == "checks-v1" and not rendered.auto_cancel_previous_checks
    project_reporting = PROJECT + "reporting: checks-v1\n"
    plain = REMOTE.replace("reporting: checks-v1\n", "")
    assert render(project_reporting, event("push.none.4"), _files(plain)).reporting == "checks-v1"


def test_a_referenced_trigger_format_file_gets_the_context_as_variables():
    remote = """
version: 2
onPush:
  - metadata: {name: '${project_name} at ${revision}', owner: '${user_email}'}
    payload: {flag: '${enabled}', count: '${count}'}
"""
    project = PROJECT + "  enabled: true\n  count: 3\n"
    [(_, task)] = render(project, event("push.none.4"), _files(remote)).tasks
    assert task["metadata"]["name"] == "mozillavpn at 6113728f27ae82c7b1a177c8d03f9e96e0adf246"
    assert task["payload"] == {"flag": "true", "count": "3"}
    with pytest.raises(tcyml.ConfigError, match="only strings, numbers and booleans"):
        render(PROJECT, event("push.none.4"), _files("version: 2\nonPush: [{scopes: '${scopes}'}]\n"))


def test_a_trigger_format_project_file_may_refer_too():
    project = "version: 2\nconfig-from: github.com/mozilla/shared-ci/taskcluster/github.yml@v2\n" \
              "context: {project_name: vpn, scopes: []}\n"
    assert len(render(project, event("push.none.4"), _files()).tasks) == 1


@pytest.mark.parametrize(("project", "words"), [
    (PROJECT + "tasks: []\n", "both `config-from` and `tasks`"),
    (PROJECT + "hooks: [{name: a/b}]\n", "both `config-from` and `hooks`"),
    ("version: 2\nconfig-from: github.com/a/b/c.yml@main\nonPush: []\n", "both `config-from` and `onPush`"),
    ("version: 1\ncontext: {a: 1}\ntasks: []\n", "`context` without `config-from`"),
    ("version: 1\nconfig-from: github.com/a/b/../x.yml@main\n", "no usable file path"),
])
def test_project_file_rules(project, words):
    with pytest.raises(tcyml.ConfigError) as caught:
        render(project, event("push.none.4"), Files())
    assert caught.value.kind == "config-from" and words in str(caught.value), str(caught.value)


@pytest.mark.parametrize(("project", "words"), [
    ("version: 1\nconfig-from: gitlab.com/a/b/c.yml@main\n", "`config-from`"),
    ("version: 1\nconfig-from: github.com/a/b/c.yml\n", "`config-from`"),
    ("version: 1\nconfig-from: github.com/a/b@main\n", "`config-from`"),
    (PROJECT + "  project-name: x\n", "context keys must be identifiers"),
])
def test_malformed_references_and_context_keys_are_schema_errors(project, words):
    with pytest.raises(tcyml.ConfigError) as caught:
        render(project, event("push.none.4"), Files())
    assert caught.value.kind == "schema" and words in str(caught.value), str(caught.value)


def test_a_reference_that_cannot_be_fetched():
    with pytest.raises(tcyml.ConfigError) as caught:
        render(PROJECT, event("push.none.4"), Files())
    assert caught.value.kind == "config-from"
    assert str(caught.value) == ("`config-from: github.com/mozilla/shared-ci/taskcluster/github.yml@v2`: the "
                                 "referenced file could not be read: 404 Not Found: "
                                 "mozilla/shared-ci/taskcluster/github.yml@v2")


@pytest.mark.parametrize(("remote", "kind", "words"), [
    ("version: 1\nconfig-from: github.com/x/y/z.yml@main\n", "config-from", "no recursion"),
    ("version: 1\ncontext: {a: 1}\ntasks: []\n", "config-from", "has `context`"),
    ("version: [1\n", "yaml", "`github.com/mozilla/shared-ci/taskcluster/github.yml@v2` is not valid YAML"),
    ("version: 1\ntasks: 1\n", "schema", "`github.com/mozilla/shared-ci/taskcluster/github.yml@v2` does not match"),
    ("version: 0\n", "version", "no longer supported"),
    ("version: 1\ntasks: [{$eval: nope}]\n", "json-e", "unknown context value nope"),
    ("version: 2\nonPush: [{name: '${pr_title}'}]\n", "variables", "only defined in `onPullRequest`"),
])
def test_referenced_file_errors(remote, kind, words):
    with pytest.raises(tcyml.ConfigError) as caught:
        render(PROJECT, event("push.none.4"), _files(remote))
    assert caught.value.kind == kind and words in str(caught.value), str(caught.value)


def test_without_config_from_the_project_is_the_config_repo():
    rendered = render("version: 1\ntasks: []\n", event("pull_request.opened.0"))
    assert rendered.config_repo == "https://github.com/Codertocat/Hello-World"
    assert rendered.config_revision == "ec26c3e57ca3a959ca5aad62de7213c562f8c821" and rendered.config_from is None
