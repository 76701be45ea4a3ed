"""The pure rules of the GitHub consumers: Taskcluster's event types, conclusions, and log excerpts."""

from __future__ import annotations

import json

from cairn.consumers.github.builds import event_type, scopes_refusal
from cairn.consumers.github.reporting import CONCLUSIONS, log_excerpt
from cairn.domain.github import tcyml
from tests.conftest import reference_dir


def example(name: str) -> dict:
    return json.loads((reference_dir("github/webhooks") / "github" / "webhooks" / f"{name}.json").read_text())


def test_event_types_are_taskclusters():
    assert event_type(tcyml.interpret("push", example("push.none.4"))) == "push"
    assert event_type(tcyml.interpret("push", example("push.none.0"))) == "tag"
    assert event_type(tcyml.interpret("pull_request", example("pull_request.synchronize.0"))) == (
        "pull_request.synchronize"
    )
    assert event_type(tcyml.interpret("release", example("release.published.0"))) == "release"


def test_conclusions_map_resolutions_as_taskcluster_does():
    assert CONCLUSIONS["completed"] == "success"
    assert CONCLUSIONS["failed"] == "failure"
    assert CONCLUSIONS["deadline-exceeded"] == "timed_out"
    assert CONCLUSIONS["canceled"] == "cancelled"
    assert CONCLUSIONS["malformed-payload"] == "action_required"
    assert CONCLUSIONS["intermittent-task"] == "neutral"


def test_a_long_log_keeps_its_head_and_tail_without_colours():
    text = "\n".join(f"\x1b[32mline {i}\x1b[0m" for i in range(1000))
    excerpt = log_excerpt(text, 60000)
    lines = excerpt.splitlines()
    assert lines[0] == "line 0" and lines[19] == "line 19"
    assert "...(780 lines hidden)..." in excerpt
    assert lines[-1] == "line 999" and "line 800" in lines
    assert "\x1b" not in excerpt
    assert len(log_excerpt(text, 100)) <= 100


def test_a_scope_refusal_names_the_scopes_it_was_tried_with():
    message = scopes_refusal(["assume:repo:github.com/o/r:branch:main"], "missing: secrets:get:x")
    assert "assume:repo:github.com/o/r:branch:main" in message
    assert message.endswith("missing: secrets:get:x")
