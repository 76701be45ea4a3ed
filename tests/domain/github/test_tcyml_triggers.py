"""The trigger format (version 2): a task list per trigger, ``${name}`` variables, YAML anchors, clear errors."""

from __future__ import annotations

import pytest

from cairn.domain.github import tcyml
from tests.domain.github.tcyml_support import (
    NOW_ISO,
    comment_event,
    event,
    payload,
    pull_request_for_comment,
    release_event,
    render,
)

FILE = """
version: 2
policy:
  pullRequests: public
reporting: checks-v1

x-base: &base
  taskQueueId: proj-redo/ci
  provisionerId: ignored-by-nobody
  payload: &payload
    image: python:3.12
    maxRunTime: 600
  metadata: &metadata
    owner: ${user_email}
    source: ${repository}/raw/${revision}/.taskcluster.yml

onPush:
  - <<: *base
    payload:
      <<: *payload
      command: [sh, -c, 'git clone ${repository} r && cd r && git checkout ${revision} && make ${branch}']
    metadata:
      <<: *metadata
      name: Push to ${branch}
      description: by ${user}

onPullRequest:
  - <<: *base
    payload:
      <<: *payload
      command: [sh, -c, 'git fetch ${repository} ${branch} && python pull-request.py "${pr_title}" ${pr_number}']
    metadata:
      <<: *metadata
      name: PR ${pr_number} ${comment}
      description: ${pr_url}

onRelease:
  - <<: *base
    payload:
      <<: *payload
      command: [sh, -c, 'python release.py ${release_name} ${tag} && echo $${NOT_A_VARIABLE}']
    metadata:
      <<: *metadata
      name: Release ${tag}
      description: ${release_name}

onCustomTrigger:
  raptor:
    - metadata: {name: '${whatever} the tool wants'}
"""
REPO = "https://github.com/Codertocat/Hello-World"
SHA = "6113728f27ae82c7b1a177c8d03f9e96e0adf246"
PR_SHA = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"


def test_a_push_to_the_default_branch_runs_on_push():
    rendered = render(FILE, event("push.none.4"))
    [(task_id, task)] = rendered.tasks
    assert task == {
        "schedulerId": "taskcluster-github", "taskGroupId": task_id, "created": NOW_ISO,
        "deadline": "2026-03-05T05:06:07.890Z", "taskQueueId": "proj-redo/ci", "provisionerId": "ignored-by-nobody",
        "payload": {"image": "python:3.12", "maxRunTime": 600, "command": [
            "sh", "-c", f"git clone {REPO} r && cd r && git checkout {SHA} && make master"]},
        "metadata": {"owner": "21031067+Codertocat@users.noreply.github.com",
                     "source": f"{REPO}/raw/{SHA}/.taskcluster.yml", "name": "Push to master",
                     "description": "by Codertocat"},
        "routes": ["checks"],
    }
    assert rendered.version == 2 and rendered.reporting == "checks-v1" and rendered.policy == tcyml.Policy("public")
    assert rendered.scopes[0] == "assume:repo:github.com/Codertocat/Hello-World:branch:master"


def _push(branch):
    body = payload("push.none.4")
    body["ref"] = f"refs/heads/{branch}"
    return tcyml.interpret("push", body)


def test_other_branches_and_tags_run_nothing():
    assert render(FILE, _push("feature")).tasks == []
    assert render(FILE, event("push.none.0")).tasks == []  # a tag push


def test_the_primary_branch_is_configurable():
    text = FILE.replace("version: 2\n", "version: 2\nprimaryBranch: main\n")
    assert render(text, event("push.none.4")).tasks == []
    [(_, task)] = render(text, _push("main")).tasks
    assert task["metadata"]["name"] == "Push to main"


@pytest.mark.parametrize("action", ["opened", "synchronize", "reopened"])
def test_pull_requests_run_on_pull_request(action):
    [(_, task)] = render(FILE, event(f"pull_request.{action}.0")).tasks
    assert task["payload"]["command"][2] == (
        f'git fetch {REPO} changes && python pull-request.py "Update the README with new information." 2')
    assert task["metadata"]["name"] == "PR 2 " and task["metadata"]["description"] == f"{REPO}/pull/2"
    assert task["metadata"]["source"] == f"{REPO}/raw/{PR_SHA}/.taskcluster.yml"


@pytest.mark.parametrize("action", ["closed", "labeled"])
def test_other_pull_request_actions_run_nothing(action):
    assert render(FILE, event(f"pull_request.{action}.0")).tasks == []


def test_an_untrusted_pull_request_runs_the_same_tasks_with_the_untrusted_role():
    rendered = render(FILE, event("pull_request.opened.0"), untrusted=True)
    assert len(rendered.tasks) == 1 and rendered.role.endswith(":pull-request-untrusted")


def test_a_comment_runs_on_pull_request_with_the_command():
    ev = comment_event("/taskcluster lint").with_pull_request(pull_request_for_comment())
    [(_, task)] = render(FILE, ev).tasks
    assert task["metadata"]["name"] == "PR 2 lint"


def test_a_published_release_runs_on_release():
    [(_, task)] = render(FILE, release_event()).tasks
    assert task["payload"]["command"][2] == "python release.py 0.0.1 0.0.1 && echo ${NOT_A_VARIABLE}"
    assert task["metadata"]["name"] == "Release 0.0.1"
    assert render(FILE, release_event("created")).tasks == []


def test_custom_triggers_never_run_and_are_not_checked():
    text = "version: 2\nonCustomTrigger:\n  raptor: [{name: '${anything}'}]\n"
    for ev in (event("push.none.4"), event("pull_request.opened.0"), release_event()):
        assert render(text, ev).tasks == []


def test_several_tasks_share_a_group():
    text = "version: 2\nonPush:\n  - {metadata: {name: a}}\n  - {metadata: {name: b}}\n"
    rendered = render(text, event("push.none.4"))
    assert len({t["taskGroupId"] for _, t in rendered.tasks}) == 1 and len(rendered.tasks) == 2


def test_numbers_and_whole_strings_are_substituted_as_text():
    text = "version: 2\nonPullRequest: [{extra: {n: '${pr_number}', kept: 5, flag: true}}]\n"
    [(_, task)] = render(text, event("pull_request.opened.0")).tasks
    assert task["extra"] == {"n": "2", "kept": 5, "flag": True}


def _error(text, ev=None):
    with pytest.raises(tcyml.ConfigError) as caught:
        render(text, ev or event("push.none.4"))
    return caught.value


def test_a_variable_of_another_trigger_is_an_error_whatever_the_event():
    text = "version: 2\nonPush: [{metadata: {name: '${pr_title}'}}]\n"
    for ev in (event("push.none.4"), event("pull_request.opened.0"), release_event()):
        err = _error(text, ev)
        assert err.kind == "variables"
        assert str(err) == (
            "`.taskcluster.yml` (version 2) uses variables it cannot:\n\n"
            "- `onPush[0].metadata.name`: `${pr_title}` is only defined in `onPullRequest`, not in `onPush` "
            "(its variables: repository, revision, user, user_email, branch)"
        )


def test_tag_is_only_for_releases_and_unknown_names_are_refused():
    err = _error("version: 2\nonPullRequest: [{a: '${tag}'}]\nonRelease: [{b: '${pr}', c: '${ bad }'}]\n")
    assert "`onPullRequest[0].a`: `${tag}` is only defined in `onRelease`" in str(err)
    assert "`onRelease[0].b`: unknown variable `${pr}`" in str(err)
    assert "`onRelease[0].c`: `${ bad }` is not a variable name" in str(err)


def test_many_problems_are_summarised():
    err = _error("version: 2\nonPush:\n" + "".join(f"  - {{n: '${{x{i}}}'}}\n" for i in range(12)))
    assert str(err).count("unknown variable") == 10 and str(err).endswith("- ... and 2 more")


@pytest.mark.parametrize(("text", "words"), [
    ("version: 2\nonPush: [{taskId: abc}]\n", "cannot fix its taskId or taskGroupId"),
    ("version: 2\nonPush: [{taskGroupId: abc}]\n", "cannot fix its taskId or taskGroupId"),
    ("version: 2\nonMasterPush: []\n", "unknown top-level key(s) `onMasterPush`"),
    ("version: 2\nonPush: {name: x}\n", "`onPush`"),
    ("version: 2\nonPush: [3]\n", "`onPush[0]`"),
    ("version: 2\ntasks: []\n", "unknown top-level key(s) `tasks`"),
    ("version: 2\nprimaryBranch: ''\n", "`primaryBranch`"),
    ("version: 2\nonCustomTrigger: {a: 1}\n", "`onCustomTrigger.a`"),
])
def test_schema_errors(text, words):
    err = _error(text)
    assert err.kind == "schema" and words in str(err), str(err)


def test_x_keys_hold_anything():
    assert render("version: 2\nx-anchors: {a: [1, 2]}\nx-other: 3\n", event("push.none.4")).tasks == []


def test_a_task_without_a_deadline_gets_one_day():
    text = "version: 2\nonPush:\n  - {metadata: {name: a}}\n  - {deadline: '2026-03-04T06:00:00.000Z'}\n"
    deadlines = [t["deadline"] for _, t in render(text, event("push.none.4")).tasks]
    assert deadlines == ["2026-03-05T05:06:07.890Z", "2026-03-04T06:00:00.000Z"]
