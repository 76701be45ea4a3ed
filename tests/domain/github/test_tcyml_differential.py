"""Differential test: realistic `.taskcluster.yml` files rendered against real webhook payloads.

Each folder of ``tcyml_differential/`` holds a project's ``.taskcluster.yml``
and ``expected.yml``: for each case, the delivery (a file of the reference
payloads) and what Taskcluster-GitHub would create for it — task ids and
definitions, the scopes, reporting and policy — worked out by hand from its
``tc-yaml.js`` and ``handlers/job.js``, not produced by this code. Generated
ids are written ``<id:NAME>``: the same NAME must be the same id everywhere,
and different NAMEs different ids. ``files`` gives the files a ``config-from``
may fetch (``owner/repo/path@ref`` → the folder's file and the revision).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from cairn.domain.github import tcyml
from tests.domain.github.tcyml_support import Files, payload, render

HERE = Path(__file__).parent / "tcyml_differential"
PLACEHOLDER = re.compile(r"<id:([A-Za-z0-9_]+)>")
SLUG = r"[A-Za-z0-9_-]{22}"


def _cases() -> list[Any]:
    found = []
    for folder in sorted(p for p in HERE.iterdir() if p.is_dir()):
        spec = yaml.safe_load((folder / "expected.yml").read_text())
        for case in spec["cases"]:
            found.append(pytest.param(folder, spec.get("files", {}), case, id=f"{folder.name}: {case['name']}"))
    return found


def _event(case: dict[str, Any]) -> tcyml.GithubEvent:
    name = case["payload"]
    body = payload(name)
    if "comment" in case:
        body["issue"]["pull_request"] = {"url": body["issue"]["url"].replace("/issues/", "/pulls/")}
        body["comment"]["body"] = case["comment"]
    if "ref" in case:
        body["ref"] = case["ref"]
    event = tcyml.interpret(name.split(".")[0], body)
    assert event is not None
    if "sha" in case:
        event = event.with_sha(case["sha"])
    if "pull_request" in case:
        event = event.with_pull_request(payload(case["pull_request"])["pull_request"])
    return event


def _match(expected: Any, actual: Any, ids: dict[str, str], where: str) -> None:
    if isinstance(expected, str) and PLACEHOLDER.search(expected):
        pattern, seen = "", set()
        for i, part in enumerate(PLACEHOLDER.split(expected)):
            if i % 2 == 0:
                pattern += re.escape(part)
            elif part in ids:
                pattern += re.escape(ids[part])
            elif part in seen:
                pattern += f"(?P={part})"
            else:
                seen.add(part)
                pattern += f"(?P<{part}>{SLUG})"
        found = re.fullmatch(pattern, actual) if isinstance(actual, str) else None
        assert found, f"{where}: {actual!r} is not {expected!r}"
        ids.update(found.groupdict())
    elif isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}: {actual!r} is not an object"
        assert sorted(actual) == sorted(expected), f"{where}: keys {sorted(actual)} are not {sorted(expected)}"
        for key, value in expected.items():
            _match(value, actual[key], ids, f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), f"{where}: {actual!r} is not {expected!r}"
        for i, (want, got) in enumerate(zip(expected, actual)):
            _match(want, got, ids, f"{where}[{i}]")
    else:
        assert type(actual) is type(expected) and actual == expected, f"{where}: {actual!r} is not {expected!r}"


@pytest.mark.parametrize(("folder", "files", "case"), _cases())
def test_rendering_matches_taskcluster_github(folder, files, case):
    fetch = Files({
        tuple(re.fullmatch(r"([^/]+)/([^/]+)/(.+)@(.+)", ref).groups()):
            ((folder / spec["file"]).read_text(), spec["revision"])
        for ref, spec in files.items()
    })
    rendered = render((folder / ".taskcluster.yml").read_text(), _event(case), fetch,
                      untrusted=case.get("untrusted", False), id_seed=f"{folder.name}/{case['name']}")
    assert rendered.scopes == case["scopes"]
    assert rendered.reporting == case.get("reporting")
    assert rendered.auto_cancel_previous_checks is case.get("autoCancelPreviousChecks", True)
    want = case.get("policy", {})
    assert rendered.policy == tcyml.Policy(want.get("pullRequests", "collaborators"), want.get("allowComments"))
    ids: dict[str, str] = {}
    actual = [{"taskId": task_id, "task": task} for task_id, task in rendered.tasks]
    _match(case["tasks"], actual, ids, "tasks")
    assert len(set(ids.values())) == len(ids), f"different names, same id: {ids}"
    if rendered.tasks:
        assert rendered.task_group_id == rendered.tasks[0][1]["taskGroupId"]
    if "config" in case:
        assert (rendered.config_repo, rendered.config_revision) == (case["config"]["repo"], case["config"]["revision"])
