"""The github views rebuilt from the log equal the views kept as events were recorded."""

from __future__ import annotations

import json
from datetime import timedelta

import taskcluster

from cairn.domain.aggregate import acting_as
from cairn.domain.timestamps import utcnow
from tests.integration.test_projection_rebuild import cli

INSTALLATION = {
    "action": "created",
    "installation": {"id": 42, "account": {"login": "octo-org"}, "repository_selection": "all"},
    "repositories": [],
}


def github_workload(runtime) -> list[str]:
    service, now = runtime.github.service, utcnow()
    groups = [taskcluster.slugId() for _ in range(4)]
    with acting_as("github-tests"):
        service.record_delivery("2b5ce0a0-7b0c-11e9-8f0b-0e6e0e6b4e6f", "installation", INSTALLATION, now)
        for i, group in enumerate(groups):
            service.record_build(
                group, "octo-org", "app", f"{i:x}" * 40, "push", "2b5ce0a0-7b0c-11e9-8f0b-0e6e0e6b4e6f", 42,
                now + timedelta(seconds=i), pull_request_number=i or None, branch="main",
            )
        service.record_build_tasks_created(groups[0], ["t1"], ["statuses"])
        service.set_build_state(groups[0], "success", now + timedelta(minutes=1))
        service.set_build_state(groups[1], "failure", now + timedelta(minutes=2))
        service.set_build_state(groups[1], "pending", now + timedelta(minutes=3))  # rerun
        service.cancel_build(groups[2], now + timedelta(minutes=4))
        posted = service.request_status("octo-org", "app", "a" * 40, {"state": "success"}, {"api": "tests"})
        service.record_request_posted(posted.request_id, {"id": 1})
        retried = service.request_comment("octo-org", "app", 3, "hello", {"api": "tests"})
        service.record_request_attempt_failed(retried.request_id, "502 from GitHub", "2099-01-01T00:00:00.000Z")
        failed = service.request_comment("octo-org", "app", 4, "hello", {"api": "tests"})
        service.record_request_failed(failed.request_id, "404 from GitHub")
    return groups


def test_the_github_views_equal_a_rebuild_and_a_tampered_row_is_found(runtime):
    groups = github_workload(runtime)
    listed = cli(runtime, "projections", "list")
    assert listed.exit_code == 0 and "github" in listed.output
    result = cli(runtime, "projections", "verify", "github")
    assert result.exit_code == 0, result.output

    states = [s["state"] for s in runtime.github.reads.build_states(groups[1])]
    assert states == ["pending", "failure", "pending"]
    assert runtime.github.reads.build(groups[2])["state"] == "cancelled"

    with runtime.store.unit_of_work() as session:
        session.execute_sql(f"UPDATE github_builds SET state = 'success' WHERE task_group_id = '{groups[3]}'")
        session.execute_sql(f"DELETE FROM github_build_states WHERE task_group_id = '{groups[1]}'")
    result = cli(runtime, "projections", "verify", "github")
    assert result.exit_code == 1, result.output
    assert f"github: github_builds [task_group_id='{groups[3]}']: state is 'success' in the view" in result.output
    assert "github_build_states" in result.output

    result = cli(runtime, "projections", "rebuild", "github")
    assert result.exit_code == 0, result.output
    assert cli(runtime, "projections", "verify").exit_code == 0
    assert runtime.github.reads.build(groups[3])["state"] == "pending"
    assert [s["state"] for s in runtime.github.reads.build_states(groups[1])] == ["pending", "failure", "pending"]


def test_a_build_s_history_is_its_events_in_order(runtime):
    groups = github_workload(runtime)
    result = cli(runtime, "history", "github-build", groups[1], "--json")
    assert result.exit_code == 0, result.output
    events = json.loads(result.output)["events"]
    assert [e["type"] for e in events] == ["GithubBuildCreated", "GithubBuildStateChanged",
                                           "GithubBuildStateChanged"]
    assert {e["clientId"] for e in events} == {"github-tests"}
    missing = cli(runtime, "history", "github-build", "nosuchgroup")
    assert missing.exit_code == 1
