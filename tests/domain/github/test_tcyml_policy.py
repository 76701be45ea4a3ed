"""Policies, read from the default branch's file, and the decisions Taskcluster makes with them."""

from __future__ import annotations

import pytest

from cairn.domain.github import tcyml
from tests.domain.github.tcyml_support import Files, event, payload


@pytest.mark.parametrize("value", ["public", "public_restricted", "collaborators", "collaborators_quiet"])
def test_each_pull_request_policy_is_read(value):
    policy = tcyml.read_policy(f"version: 1\npolicy:\n  pullRequests: {value}\ntasks: []\n")
    assert policy == tcyml.Policy(value, None, found=True)


def test_defaults():
    assert tcyml.read_policy("version: 1\ntasks: []\n") == tcyml.Policy(tcyml.COLLABORATORS, None)
    assert tcyml.read_policy("version: 1\npolicy: {}\n") == tcyml.Policy(tcyml.COLLABORATORS, None)
    # No file on the default branch: collaborators may try one out, quietly.
    assert tcyml.read_policy(None) == tcyml.Policy(tcyml.COLLABORATORS_QUIET, None, found=False)


def test_allow_comments():
    policy = tcyml.read_policy("version: 1\npolicy: {pullRequests: public, allowComments: collaborators}\n")
    assert policy == tcyml.Policy("public", "collaborators")
    assert tcyml.read_policy("version: 1\npolicy: {allowComments: everybody}\n").allow_comments is None


@pytest.mark.parametrize("text", [
    "version: 1\npolicy: [oops", "just text", "version: 0\nallowPullRequests: public\n",
    "version: 1\npolicy: {pullRequests: everyone}\n", "version: 7\npolicy: {pullRequests: public}\n",
    "version: 1\npolicy: public\n",
])
def test_an_unreadable_or_invalid_file_gives_the_restrictive_default(text):
    assert tcyml.read_policy(text) == tcyml.Policy(tcyml.COLLABORATORS, None, found=True)


def test_the_trigger_format_has_the_same_policy():
    assert tcyml.read_policy("version: 2\npolicy: {pullRequests: public}\nonPush: []\n").pull_requests == "public"


def test_with_config_from_the_referenced_policy_applies_unless_the_project_has_one():
    remote = "version: 1\npolicy: {pullRequests: public, allowComments: collaborators}\ntasks: []\n"
    files = Files({("org", "ci", "tc.yml", "main"): (remote, "a" * 40)})
    project = "version: 1\nconfig-from: github.com/org/ci/tc.yml@main\n"
    assert tcyml.read_policy(project, files) == tcyml.Policy("public", "collaborators")
    assert files.calls == [("org", "ci", "tc.yml", "main")]
    own = project + "policy: {pullRequests: collaborators_quiet}\n"
    assert tcyml.read_policy(own, files) == tcyml.Policy("collaborators_quiet", None)
    assert len(files.calls) == 1  # not fetched when the project file decides
    assert tcyml.read_policy(project) == tcyml.Policy()  # no way to fetch: the default
    assert tcyml.read_policy(project, Files()) == tcyml.Policy()  # not found: the default
    bad = Files({("org", "ci", "tc.yml", "main"): ("version: [", "a" * 40)})
    assert tcyml.read_policy(project, bad) == tcyml.Policy()


class Collaborators:
    def __init__(self, *logins):
        self.logins = set(logins)
        self.asked = []

    def __call__(self, login):
        self.asked.append(login)
        return login in self.logins


def _pr(opener="alice", head="alice", base="org"):
    body = payload("pull_request.opened.0")
    body["pull_request"]["user"]["login"] = opener
    body["pull_request"]["head"]["user"]["login"] = head
    body["pull_request"]["base"]["user"]["login"] = base
    return tcyml.interpret("pull_request", body)


def test_trusted_needs_a_collaborator_opener_merging_from_a_collaborator_or_the_base():
    assert tcyml.pull_request_trusted(_pr("alice", "alice"), Collaborators("alice"))
    assert tcyml.pull_request_trusted(_pr("alice", "org", "org"), Collaborators("alice"))
    assert tcyml.pull_request_trusted(_pr("alice", "bob"), Collaborators("alice", "bob"))
    assert not tcyml.pull_request_trusted(_pr("alice", "mallory"), Collaborators("alice"))
    assert not tcyml.pull_request_trusted(_pr("mallory", "org", "org"), Collaborators("alice"))
    asked = Collaborators("alice")
    tcyml.pull_request_trusted(_pr("alice", "alice"), asked)
    assert asked.asked == ["alice"]  # the head is the opener: asked once


@pytest.mark.parametrize(("policy", "trusted", "action", "expected"), [
    ("public", False, "opened", tcyml.Decision(build=True)),
    ("public", True, "opened", tcyml.Decision(build=True)),
    ("public_restricted", True, "opened", tcyml.Decision(build=True)),
    ("public_restricted", False, "synchronize", tcyml.Decision(build=True, untrusted=True)),
    ("collaborators", True, "opened", tcyml.Decision(build=True)),
    ("collaborators_quiet", True, "opened", tcyml.Decision(build=True)),
    ("collaborators_quiet", False, "opened", tcyml.Decision(build=False)),
    ("collaborators", False, "synchronize", tcyml.Decision(build=False)),
])
def test_pull_request_decisions(policy, trusted, action, expected):
    assert tcyml.pull_request_decision(tcyml.Policy(policy), event(f"pull_request.{action}.0"), trusted) == expected


def test_collaborators_comments_once_when_it_refuses_an_opened_pull_request():
    decision = tcyml.pull_request_decision(tcyml.Policy("collaborators"), event("pull_request.opened.0"), False)
    assert not decision.build and decision.comment == (
        "<details>\n\n<summary>No Taskcluster jobs started for this pull request</summary>\n\n"
        "The `allowPullRequests` configuration for this repository (in `.taskcluster.yml` on the default branch) "
        "does not allow starting tasks for this pull request.\n\n</details>"
    )


def test_comment_decisions():
    allowed = tcyml.Policy("collaborators", "collaborators")
    assert tcyml.comment_decision(allowed, True) == tcyml.Decision(build=True, reaction="+1")
    refused = tcyml.comment_decision(allowed, False, "mallory")
    assert not refused.build and refused.reaction == "eyes"
    assert 'User "mallory" is not a collaborator.' in refused.comment
    closed = tcyml.comment_decision(tcyml.Policy("public"), True)
    assert not closed.build and closed.reaction == "confused"
    assert "does not allow starting tasks from comments" in closed.comment
    assert tcyml.comment_decision(tcyml.read_policy(None), True) == tcyml.Decision(build=False)


def test_error_comments_have_taskclusters_layout():
    text = tcyml.error_comment(tcyml.ConfigError("bad `tasks`"))
    assert text == "<details>\n\n<summary>Uh oh! Looks like an error!</summary>\n\nbad `tasks`\n\n</details>"
    assert tcyml.error_comment("plain") .endswith("plain\n\n</details>")
    assert tcyml.comment_body("S", "D") == "<details>\n\n<summary>S</summary>\n\nD\n\n</details>"
