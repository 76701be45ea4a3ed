"""The README's "CI from GitHub" examples are files the engine accepts, and do what the text says."""

from __future__ import annotations

import re
from pathlib import Path

from cairn.domain.github import tcyml
from tests.domain.github.tcyml_support import Files, event, release_event, render

README = Path(__file__).resolve().parents[3] / "README.md"


def _examples() -> list[str]:
    text = README.read_text()
    section = text.split("\n## CI from GitHub\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```yaml\n(.*?)```", section, re.S)


def test_the_section_has_its_three_examples():
    v1, v2, shared = _examples()
    assert "version: 1" in v1 and "version: 2" in v2 and "config-from" in shared


def test_the_version_1_example():
    v1 = _examples()[0]
    [(_, task)] = render(v1, event("push.none.4")).tasks
    assert task["payload"]["command"] == [["sh", "-c", (
        "git clone https://github.com/Codertocat/Hello-World src && cd src && "
        "git checkout 6113728f27ae82c7b1a177c8d03f9e96e0adf246 && make test")]]
    assert task["metadata"]["owner"] == "21031067+Codertocat@users.noreply.github.com"
    assert len(render(v1, event("pull_request.opened.0")).tasks) == 1
    assert render(v1, event("pull_request.closed.0")).tasks == []
    assert tcyml.read_policy(v1).pull_requests == "public"


def test_the_trigger_format_example():
    v2 = _examples()[1].replace("primaryBranch: main", "primaryBranch: master")
    [(_, push)] = render(v2, event("push.none.4")).tasks
    [(_, pr)] = render(v2, event("pull_request.opened.0")).tasks
    [(_, release)] = render(v2, release_event()).tasks
    assert (push["metadata"]["name"], pr["metadata"]["name"], release["metadata"]["name"]) == (
        "tests", "tests of #2", "release 0.0.1")
    assert pr["metadata"]["owner"] == "Codertocat@users.noreply.github.com"
    assert render(_examples()[1], event("push.none.4")).tasks == []  # master is not main


def test_the_config_from_example():
    shared = "version: 1\ntasks: [{scopes: {$eval: scopes}, metadata: {name: '${project_name}'}}]\n"
    files = Files({("my-org", "ci-config", "taskcluster/decision.yml", "v3"): (shared, "f" * 40)})
    rendered = render(_examples()[2], event("push.none.4"), files)
    [(_, task)] = rendered.tasks
    assert task["scopes"] == ["secrets:get:project/my-repo/*"] and task["metadata"]["name"] == "my-repo"
    assert rendered.config_repo == "https://github.com/my-org/ci-config" and rendered.config_revision == "f" * 40
