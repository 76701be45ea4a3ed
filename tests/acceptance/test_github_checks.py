"""`reporting: checks-v1` end to end: one check run per task, its conclusion, its log, and reruns from GitHub."""

from __future__ import annotations

from tests.acceptance.github_helpers import (  # noqa: F401 - fixtures
    OWNER,
    REPO,
    WORKER_QUEUE,
    deliver,
    github,
    handled,
    payload,
    repo,
    server,
    settings_overrides,
    start_worker,
    wait_for,
)

SHA = "6113728f27ae82c7b1a177c8d03f9e96e0adf246"


def task(name: str, command: str, extra: str = "") -> str:
    return f"""\
  - taskId: {{$eval: as_slugid("{name}")}}
    taskQueueId: {WORKER_QUEUE}
    deadline: {{$fromNow: '1 hour'}}
    payload:
      command: [[sh, -c, "{command}"]]
      maxRunTime: 60
    metadata: {{name: {name}, description: the {name} task, owner: ci@example.com, source: https://example.com}}
{extra}"""


CHECKS_FILE = "version: 1\nreporting: checks-v1\ntasks:\n" + task("good", "echo all is well") + task(
    "bad", "echo something broke; exit 1"
)


def completed_runs(github, count: int) -> dict[int, dict]:
    def check() -> dict[int, dict] | None:
        runs = github.check_runs()
        done = {i: r for i, r in runs.items() if r.get("status") == "completed"}
        return runs if len(done) >= count else None

    return wait_for(check, what=f"{count} completed check runs")


def test_checks_v1_gives_one_check_run_per_task_with_its_conclusion_and_log(server, github, repo, start_worker):
    repo.commit({".taskcluster.yml": CHECKS_FILE}, branch="master", sha=SHA)
    start_worker()
    _, delivery_id = deliver(server, "push", payload("push.none.4"))
    delivery = handled(server, delivery_id)
    assert delivery.outcome == "created", delivery.detail
    queue = server.client("queue")
    tasks = queue.listTaskGroup(delivery.detail["taskGroupId"])["tasks"]
    assert all("checks" in t["task"]["routes"] for t in tasks)

    runs = completed_runs(github, 2)
    by_name = {r["name"]: r for r in runs.values()}
    assert set(by_name) == {"good", "bad"}
    assert (by_name["good"]["conclusion"], by_name["bad"]["conclusion"]) == ("success", "failure")
    for run in by_name.values():
        assert run["head_sha"] == SHA
        assert run["details_url"] == f"{server.root_url}/tasks/{run['external_id']}"
        assert run["output"]["title"] == "Taskcluster (push)"
    assert "all is well" in by_name["good"]["output"]["text"]
    assert "something broke" in by_name["bad"]["output"]["text"]
    assert github.statuses(OWNER, REPO) == []  # checks instead of statuses
    build = wait_for(lambda: [b for b in server.client("github").builds()["builds"] if b["state"] != "pending"],
                     what="the build to resolve")
    assert build[0]["state"] == "failure"


def test_a_rerequested_check_run_reruns_its_task(server, github, repo, start_worker):
    repo.commit({".taskcluster.yml": CHECKS_FILE}, branch="master", sha=SHA)
    start_worker()
    _, delivery_id = deliver(server, "push", payload("push.none.4"))
    assert handled(server, delivery_id).outcome == "created"
    runs = completed_runs(github, 2)
    check_run_id, bad = next((i, r) for i, r in runs.items() if r["name"] == "bad")

    push = payload("push.none.4")
    rerequest = payload("check_run.rerequested.0", repository=push["repository"])
    rerequest["check_run"].update(id=check_run_id, external_id=bad["external_id"], head_sha=SHA, name="bad")
    _, rerun_delivery = deliver(server, "check_run", rerequest)
    outcome = handled(server, rerun_delivery)
    assert outcome.outcome == "rerun", outcome.detail
    assert outcome.detail["taskIds"] == [bad["external_id"]]

    queue = server.client("queue")
    status = wait_for(lambda: (lambda s: s if len(s["runs"]) == 2 and s["state"] == "failed" else None)(
        queue.status(bad["external_id"])["status"]), what="the rerun to fail again")
    assert [r["reasonCreated"] for r in status["runs"]] == ["scheduled", "rerun"]
    # The new run has a check run of its own; the other task was left alone.
    runs = completed_runs(github, 3)
    assert sorted(r["name"] for r in runs.values()) == ["bad", "bad", "good"]
    assert len(queue.status(next(r["external_id"] for r in runs.values() if r["name"] == "good"))["status"]["runs"]) == 1


def test_a_check_run_of_another_app_reruns_nothing(server, github, repo):
    push = payload("push.none.4")
    rerequest = payload("check_run.rerequested.0", repository=push["repository"])
    _, delivery_id = deliver(server, "check_run", rerequest)
    assert handled(server, delivery_id).outcome == "ignored"
