"""Reading real webhook deliveries as Taskcluster-GitHub does: what builds, the role, the variables, [skip ci]."""

from __future__ import annotations

import pytest

from cairn.domain.github import tcyml
from tests.domain.github.tcyml_support import comment_event, event, payload, pull_request_for_comment

SHA = "6113728f27ae82c7b1a177c8d03f9e96e0adf246"
PR_SHA = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"
REPO = "repo:github.com/Codertocat/Hello-World:"


def test_a_branch_push_builds_its_head_with_the_branch_role():
    ev = event("push.none.4")
    assert (ev.event_name, ev.tasks_for, ev.sha, ev.ref) == ("push", tcyml.PUSH, SHA, "refs/heads/master")
    assert (ev.owner, ev.repo, ev.branch, ev.tag, ev.installation_id) == ("Codertocat", "Hello-World", "master",
                                                                          None, 1)
    assert ev.default_branch == "master"
    assert ev.user == "Codertocat" and ev.user_email == "21031067+Codertocat@users.noreply.github.com"
    assert ev.commit_messages == ("Initial commit",)
    assert ev.role() == REPO + "branch:master"
    assert ev.role(untrusted=True) == REPO + "branch:master"  # only pull requests have an untrusted role
    assert ev.variables == {
        "repository": "https://github.com/Codertocat/Hello-World", "revision": SHA, "user": "Codertocat",
        "user_email": "21031067+Codertocat@users.noreply.github.com", "branch": "master",
    }


def test_a_tag_push_has_the_tag_role_and_a_tag_variable():
    ev = event("push.none.0")
    assert (ev.tasks_for, ev.sha, ev.tag, ev.branch, ev.installation_id) == (tcyml.PUSH, SHA, "simple-tag", None,
                                                                             None)
    assert ev.role() == REPO + "tag:simple-tag"
    assert ev.variables["tag"] == "simple-tag" and "branch" not in ev.variables


def test_a_deleted_ref_builds_nothing():
    ev = event("push.none.1")
    assert ev.tasks_for is None and ev.sha is None
    assert ev.no_build_reason == "the push deleted refs/tags/simple-tag"


def test_a_branch_name_with_slashes_is_kept_whole():
    body = payload("push.none.4")
    body["ref"] = "refs/heads/feature/deep/name"
    ev = tcyml.interpret("push", body)
    assert ev.branch == "feature/deep/name" and ev.role() == REPO + "branch:feature/deep/name"


@pytest.mark.parametrize("name", ["pull_request.opened.0", "pull_request.opened.1", "pull_request.synchronize.0",
                                  "pull_request.reopened.0", "pull_request.closed.0", "pull_request.labeled.0"])
def test_every_pull_request_action_is_passed_to_the_template(name):
    ev = event(name)
    assert ev.tasks_for == tcyml.PULL_REQUEST and ev.action == name.split(".")[1]
    assert (ev.sha, ev.branch, ev.ref, ev.pull_request_number) == (PR_SHA, "changes", "refs/heads/changes", 2)
    assert (ev.pr_opener, ev.pr_head_owner, ev.pr_base_owner) == ("Codertocat", "Codertocat", "Codertocat")
    assert ev.role() == REPO + "pull-request"
    assert ev.role(untrusted=True) == REPO + "pull-request-untrusted"
    assert ev.variables == {
        "repository": "https://github.com/Codertocat/Hello-World", "revision": PR_SHA, "user": "Codertocat",
        "user_email": "Codertocat@users.noreply.github.com", "branch": "changes",
        "pr_title": "Update the README with new information.", "pr_number": 2,
        "pr_url": "https://github.com/Codertocat/Hello-World/pull/2",
    }


def test_a_pull_request_from_a_fork_names_the_fork_as_repository():
    body = payload("pull_request.opened.0")
    body["pull_request"]["head"]["repo"]["html_url"] = "https://github.com/forker/Hello-World"
    body["pull_request"]["head"]["user"]["login"] = "forker"
    ev = tcyml.interpret("pull_request", body)
    assert ev.variables["repository"] == "https://github.com/forker/Hello-World"
    assert ev.pr_head_owner == "forker"


def test_a_release_waits_for_its_sha():
    ev = event("release.published.0")
    assert (ev.tasks_for, ev.sha, ev.tag, ev.ref, ev.branch) == (tcyml.RELEASE, None, "0.0.1", "refs/tags/0.0.1",
                                                                 "master")
    assert ev.role() == REPO + "release:published"
    assert "revision" not in ev.variables
    resolved = ev.with_sha("c" * 40)
    assert resolved.sha == "c" * 40 and resolved.variables["revision"] == "c" * 40
    assert resolved.variables["release_name"] == "0.0.1"  # the release has no name: its tag
    assert ev.sha is None  # events are values


def test_a_release_role_names_its_action_and_defaults_to_published():
    assert event("release.created.0").role() == REPO + "release:created"
    body = payload("release.published.0")
    del body["action"]
    assert tcyml.interpret("release", body).role() == REPO + "release:published"
    body["release"]["name"] = "Version one"
    assert tcyml.interpret("release", body).variables["release_name"] == "Version one"


def test_a_comment_on_a_plain_issue_builds_nothing():
    ev = event("issue_comment.created.0")
    assert ev.tasks_for is None and ev.no_build_reason == "the comment is not on an open pull request"


def test_a_taskcluster_command_on_an_open_pull_request_builds_with_the_trusted_role():
    ev = comment_event("/taskcluster  rebuild please ")
    assert ev.tasks_for == tcyml.ISSUE_COMMENT and ev.comment == "rebuild please"
    assert (ev.pull_request_number, ev.commenter, ev.sha) == (1, "Codertocat", None)
    assert ev.comment_id == 492700400
    assert ev.role() == ev.role(untrusted=True) == REPO + "pull-request"
    full = ev.with_pull_request(pull_request_for_comment())
    assert (full.sha, full.branch, full.pull_request_number) == (PR_SHA, "changes", 2)
    assert full.body["pull_request"]["head"]["sha"] == PR_SHA
    assert full.body["taskcluster_comment"] == "rebuild please"
    assert full.variables["comment"] == "rebuild please" and full.variables["pr_title"].startswith("Update")
    assert "pull_request" not in ev.body  # the original is unchanged


@pytest.mark.parametrize(("command", "state", "action", "reason"), [
    ("no command here", "open", "created", "the comment has no /taskcluster command"),
    ("/taskcluster", "open", "created", "the comment has no /taskcluster command"),
    ("/taskcluster run", "closed", "created", "the comment is not on an open pull request"),
    ("/taskcluster run", "open", "deleted", "only created and edited comments start builds"),
])
def test_comments_that_start_nothing(command, state, action, reason):
    body = payload("issue_comment.created.0")
    body["issue"]["pull_request"] = {"url": "u"}
    body["issue"]["state"] = state
    body["comment"]["body"] = command
    body["action"] = action
    ev = tcyml.interpret("issue_comment", body)
    assert ev.tasks_for is None and ev.no_build_reason == reason


def test_an_edited_comment_with_a_command_builds():
    body = payload("issue_comment.created.0")
    body["issue"]["pull_request"] = {"url": "u"}
    body["comment"]["body"] = "/taskcluster go"
    body["action"] = "edited"
    assert tcyml.interpret("issue_comment", body).tasks_for == tcyml.ISSUE_COMMENT


def test_with_pull_request_is_only_for_comments():
    with pytest.raises(ValueError):
        event("push.none.4").with_pull_request(pull_request_for_comment())


def test_a_rerequested_check_run_reruns_unless_a_bot_asked():
    ev = event("check_run.rerequested.0")
    assert ev.tasks_for is None and ev.rerun
    assert (ev.check_run_id, ev.check_suite_id, ev.sha) == (4, 5, "d6fde92930d4715a2b49857d24b940956b26d2d3")
    assert ev.role() == "repo:github.com/github/hello-world:rerun"
    body = payload("check_run.rerequested.0")
    body["sender"]["type"] = "Bot"
    assert not tcyml.interpret("check_run", body).rerun
    body["action"] = "completed"
    body["sender"]["type"] = "User"
    bot = tcyml.interpret("check_run", body)
    assert not bot.rerun and bot.no_build_reason == "only rerequested check runs are acted on"


@pytest.mark.parametrize("name", ["check_suite.requested.0", "check_suite.rerequested.0", "installation.created.0",
                                  "installation.deleted.0", "ping.none.0"])
def test_events_that_build_nothing(name):
    ev = event(name)
    assert ev.tasks_for is None and ev.no_build_reason
    with pytest.raises(ValueError):
        ev.role()


def test_an_installation_names_its_account():
    ev = event("installation.created.0")
    assert ev.owner == "Codertocat" and ev.installation_id == 957387


def test_unknown_events_are_not_interpreted():
    assert tcyml.interpret("star", {"action": "created"}) is None


@pytest.mark.parametrize(("name", "damage"), [
    ("push", lambda b: b.pop("ref")),
    ("push", lambda b: b["repository"]["owner"].clear()),
    ("pull_request", lambda b: b.pop("pull_request")),
    ("pull_request", lambda b: b["pull_request"]["head"].pop("sha")),
    ("release", lambda b: b["release"].pop("tag_name")),
    ("issue_comment", lambda b: b.pop("comment")),
    ("check_run", lambda b: b.pop("check_run")),
    ("check_suite", lambda b: b.pop("check_suite")),
])
def test_a_malformed_delivery_is_a_value_error(name, damage):
    source = {"push": "push.none.4", "pull_request": "pull_request.opened.0", "release": "release.published.0",
              "issue_comment": "issue_comment.created.0", "check_run": "check_run.rerequested.0",
              "check_suite": "check_suite.requested.0"}[name]
    body = payload(source)
    damage(body)
    with pytest.raises(ValueError):
        tcyml.interpret(name, body)
    with pytest.raises(ValueError):
        tcyml.interpret(name, ["not", "an", "object"])


@pytest.mark.parametrize(("message", "skipped"), [
    ("Fix typo [skip ci]", True), ("[CI SKIP] docs", True), ("[Skip Ci]", True),
    ("skip ci", False), ("[skip-ci]", False), ("Initial commit", False),
])
def test_skip_ci_reads_the_head_commit_message(message, skipped):
    body = payload("push.none.4")
    body["head_commit"]["message"] = message
    body["head_commit"]["id"] = "f" * 40
    assert tcyml.skip_ci(tcyml.interpret("push", body)) is skipped


def test_skip_ci_falls_back_to_the_last_commit_and_reads_only_the_head():
    body = payload("push.none.4")
    body["head_commit"] = None
    body["commits"] = [{"id": "1", "message": "first [skip ci]"}, {"id": "2", "message": "second"}]
    assert not tcyml.skip_ci(tcyml.interpret("push", body))
    body["commits"].reverse()
    assert tcyml.skip_ci(tcyml.interpret("push", body))
    body["commits"] = []
    assert not tcyml.skip_ci(tcyml.interpret("push", body))


def test_skip_ci_reads_a_pull_request_title():
    body = payload("pull_request.synchronize.0")
    assert not tcyml.skip_ci(tcyml.interpret("pull_request", body))
    body["pull_request"]["title"] = "WIP [ci skip]"
    assert tcyml.skip_ci(tcyml.interpret("pull_request", body))
    assert not tcyml.skip_ci(event("release.published.0"))


def test_a_pull_request_whose_fork_was_deleted_still_reads():
    body = payload("pull_request.synchronize.0")
    body["pull_request"]["head"]["repo"] = None
    ev = tcyml.interpret("pull_request", body)
    assert ev.sha == PR_SHA and ev.variables["repository"] == "https://github.com/Codertocat/Hello-World"


def test_installation_repositories_builds_nothing():
    body = payload("installation.created.0")
    body["action"] = "added"
    ev = tcyml.interpret("installation_repositories", body)
    assert ev.tasks_for is None and ev.owner == "Codertocat" and ev.installation_id == 957387
