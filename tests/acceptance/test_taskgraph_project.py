"""A real taskgraph project runs on Cairn: its decision task makes the graph, a real worker runs it all.

The test writes a small project as a team using Mozilla's
``taskcluster-taskgraph`` would: ``taskcluster/config.yml`` with a
generic-worker alias and kinds of plain task descriptions (no run-task). It
commits it to a local git repository and creates the decision task the way
Taskcluster-GitHub would for a push: in a task group of its own, with the
project's scheduler id, assuming the repository's role. A real ``cairn
worker`` runs it; the decision task clones the repository, runs ``taskgraph
decision``, which creates every task of the graph through the task's
taskclusterProxy, and uploads the graph's artifacts. The same worker then
runs the generated tasks, whose generic-worker payloads are exactly as
taskgraph made them, and every one completes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import taskcluster
import taskcluster.download
import yaml

from tests.acceptance.test_worker import RESOLVED, server, start_worker, task_log, wait_for  # noqa: F401

TASK_QUEUE = "cairn-test/taskgraph"
TRUST_DOMAIN = "cairn-example"
SCHEDULER_ID = f"{TRUST_DOMAIN}-level-1"
REPOSITORY = "https://github.com/cairn-example/example"
ROLE = "repo:github.com/cairn-example/example:branch:main"
# taskgraph's console script, installed beside this interpreter.
TASKGRAPH = Path(sys.executable).parent / "taskgraph"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    # A public deployment, as most are: taskgraph asks scopes only for artifacts outside public/.
    return {"anonymous_role": "public"}


CONFIG = {
    "trust-domain": TRUST_DOMAIN,
    "task-priority": "low",
    "taskgraph": {"repositories": {"example": {"name": "Example"}}},
    "workers": {"aliases": {"linux": {
        "provisioner": TASK_QUEUE.split("/")[0],
        "implementation": "generic-worker",
        "os": "linux",
        "worker-type": TASK_QUEUE.split("/")[1],
    }}},
}

KINDS: dict[str, dict[str, Any]] = {
    "build": {
        "loader": "taskgraph.loader.transform:loader",
        "transforms": ["taskgraph.transforms.task:transforms"],
        "tasks": {
            "hello": {
                "description": "Writes a greeting and keeps it as an artifact",
                "worker-type": "linux",
                "worker": {
                    "max-run-time": 600,
                    "command": [["/bin/sh", "-c", "mkdir -p out && echo hello from taskgraph > out/hello.txt"]],
                    "artifacts": [{"type": "file", "name": "public/hello.txt", "path": "out/hello.txt"}],
                },
            },
            "docs": {
                "description": "Builds a directory of documents",
                "worker-type": "linux",
                "worker": {
                    "max-run-time": 600,
                    "retry-exit-status": [75],
                    "command": [
                        ["/bin/sh", "-c", "mkdir -p site/api && echo '<h1>docs</h1>' > site/index.html"],
                        ["/bin/sh", "-c", "echo '{\"api\": 1}' > site/api/index.json && tar -czf site.tar.gz site"],
                    ],
                    "artifacts": [
                        {"type": "directory", "name": "public/site", "path": "site"},
                        {"type": "file", "name": "public/site.tar.gz", "path": "site.tar.gz"},
                    ],
                },
            },
        },
    },
    "check": {
        "loader": "taskgraph.loader.transform:loader",
        "kind-dependencies": ["build"],
        "transforms": ["taskgraph.transforms.task:transforms"],
        "tasks": {
            "greeting": {
                "description": "Checks the greeting its dependency made",
                "worker-type": "linux",
                "dependencies": {"build": "build-hello", "docs": "build-docs"},
                "worker": {
                    "max-run-time": 600,
                    "env": {"BUILD_TASK": {"task-reference": "<build>"}, "DOCS_TASK": {"task-reference": "<docs>"}},
                    # Another task's artifact as a file, an archive unpacked as a directory, a cache.
                    "mounts": [
                        {"file": "hello.txt",
                         "content": {"task-id": {"task-reference": "<build>"}, "artifact": "public/hello.txt"}},
                        {"directory": "docs", "format": "tar.gz",
                         "content": {"task-id": {"task-reference": "<docs>"}, "artifact": "public/site.tar.gz"}},
                        {"cache-name": "checkouts", "directory": "cache"},
                    ],
                    "purge-caches-exit-status": [72],
                    "command": [[
                        "/bin/sh", "-c",
                        'echo "checking $BUILD_TASK and $DOCS_TASK"; cat hello.txt docs/site/api/index.json'
                        ' && echo run >> cache/runs',
                    ]],
                },
            },
        },
    },
}


def make_project(directory: Path) -> tuple[Path, str]:
    """A git repository holding the project; returns it and the commit to build."""
    root = directory / "example"
    for kind, definition in KINDS.items():
        (root / "taskcluster" / "kinds" / kind).mkdir(parents=True)
        (root / "taskcluster" / "kinds" / kind / "kind.yml").write_text(yaml.safe_dump(definition))
    (root / "taskcluster" / "config.yml").write_text(yaml.safe_dump(CONFIG))
    # taskgraph hashes it to name the project's action hooks.
    (root / ".taskcluster.yml").write_text("version: 1\npolicy:\n  pullRequests: public\ntasks: []\n")
    git = ["git", "-C", str(root), "-c", "user.name=Example", "-c", "user.email=dev@example.com"]
    subprocess.run(["git", "init", "--quiet", "--initial-branch=main", str(root)], check=True)
    subprocess.run([*git, "add", "--all"], check=True)
    subprocess.run([*git, "commit", "--quiet", "--message", "A small taskgraph project"], check=True)
    revision = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    return root, revision


def decision_task(repository: Path, revision: str) -> dict[str, Any]:
    """The decision task of a push to main, as a project's .taskcluster.yml would define it."""
    decide = " ".join([
        f"git clone --quiet {repository} checkout && cd checkout && git checkout --quiet {revision} &&",
        f"{TASKGRAPH} decision --root taskcluster --project=example --owner=dev@example.com --level=1",
        f"--repository-type=git --base-repository={REPOSITORY} --head-repository={REPOSITORY}",
        f"--head-ref=refs/heads/main --head-rev={revision} --pushlog-id=0 --pushdate=0 --tasks-for=github-push",
    ])
    return {
        "taskQueueId": TASK_QUEUE,
        "schedulerId": SCHEDULER_ID,
        "created": taskcluster.stringDate(taskcluster.fromNow("0 seconds")),
        "deadline": taskcluster.stringDate(taskcluster.fromNow("1 hour")),
        "expires": taskcluster.stringDate(taskcluster.fromNow("1 year")),
        "priority": "low",
        "scopes": [f"assume:{ROLE}"],
        "routes": ["checks"],
        "payload": {
            "command": [["/bin/sh", "-c", decide]],
            "maxRunTime": 600,
            "env": {"PYTHONUNBUFFERED": "1"},
            "features": {"taskclusterProxy": True},
            "artifacts": [{"type": "directory", "path": "checkout/artifacts", "name": "public"}],
        },
        "metadata": {
            "name": "Decision Task",
            "description": "The task that creates all of the other tasks in the task graph",
            "owner": "dev@example.com",
            "source": f"{REPOSITORY}/raw/{revision}/.taskcluster.yml",
        },
        "tags": {"kind": "decision-task"},
    }


def test_a_taskgraph_decision_task_creates_a_graph_that_runs_to_completion(server, start_worker, tmp_path):
    auth, queue = server.client("auth"), server.client("queue")
    # What the repository's pushes may do: create the project's tasks, in its scheduler, on its workers.
    auth.createRole(ROLE, {"description": "pushes to main", "scopes": [
        "queue:create-task:project:none",
        f"queue:create-task:low:{TASK_QUEUE}",
        f"queue:scheduler-id:{SCHEDULER_ID}",
        "queue:route:checks",
        f"generic-worker:cache:{SCHEDULER_ID}-*",
    ]})
    repository, revision = make_project(tmp_path)
    start_worker(capacity=2, task_queue=TASK_QUEUE)
    decision_id = taskcluster.slugId()
    queue.createTask(decision_id, {**decision_task(repository, revision), "taskGroupId": decision_id})

    status = wait_for(lambda: _resolved(queue, decision_id), timeout=180, what="the decision task")
    assert status["state"] == "completed", task_log(queue, decision_id)
    label_to_task = _json_artifact(queue, decision_id, "public/label-to-taskid.json")
    assert sorted(label_to_task) == ["build-docs", "build-hello", "check-greeting"]
    graph = _json_artifact(queue, decision_id, "public/task-graph.json")

    def all_resolved() -> list[dict[str, Any]] | None:
        tasks = _group(queue, decision_id)
        done = len(tasks) == 4 and all(t["status"]["state"] in RESOLVED for t in tasks)
        return tasks if done else None

    tasks = wait_for(all_resolved, timeout=180, what="every generated task to resolve")
    states = {t["task"]["metadata"]["name"]: t["status"]["state"] for t in tasks}
    assert states == {"Decision Task": "completed", "build-docs": "completed", "build-hello": "completed",
                      "check-greeting": "completed"}, {name: task_log(queue, label_to_task[name])
                                                       for name, state in states.items() if state != "completed"
                                                       and name in label_to_task}

    for label, task_id in label_to_task.items():
        created = queue.task(task_id)
        # Exactly what taskgraph generated: the payload untouched, in the decision task's group and scheduler.
        assert created["payload"] == graph[task_id]["task"]["payload"]
        assert (created["taskGroupId"], created["schedulerId"]) == (decision_id, SCHEDULER_ID)
        assert created["tags"]["worker-implementation"] == "generic-worker"
    check_id = label_to_task["check-greeting"]
    assert set(queue.task(check_id)["dependencies"]) == {label_to_task["build-hello"], label_to_task["build-docs"]}
    check_log = task_log(queue, check_id)
    assert f"checking {label_to_task['build-hello']} and {label_to_task['build-docs']}\nhello from taskgraph\n" \
           '{"api": 1}\n' in check_log
    check_payload = queue.task(check_id)["payload"]
    assert check_payload["onExitStatus"] == {"purgeCaches": [72]}
    assert {"cacheName": f"{SCHEDULER_ID}-checkouts", "directory": "cache"} in check_payload["mounts"]
    assert f"generic-worker:cache:{SCHEDULER_ID}-checkouts" in queue.task(check_id)["scopes"]
    hello, content_type = taskcluster.download.downloadArtifactToBuf(
        taskId=label_to_task["build-hello"], runId=0, name="public/hello.txt", queueService=queue)
    assert (bytes(hello), content_type) == (b"hello from taskgraph\n", "text/plain")
    site = {a["name"] for a in queue.listArtifacts(label_to_task["build-docs"], "0")["artifacts"]}
    assert {"public/site/index.html", "public/site/api/index.json"} <= site


def _resolved(queue: Any, task_id: str) -> dict[str, Any] | None:
    status = queue.status(task_id)["status"]
    return status if status["state"] in RESOLVED else None


def _group(queue: Any, group_id: str) -> list[dict[str, Any]]:
    tasks: list[dict[str, Any]] = []
    query: dict[str, Any] = {}
    while True:
        page = queue.listTaskGroup(group_id, query=query)
        tasks += page["tasks"]
        if not page.get("continuationToken"):
            return tasks
        query = {"continuationToken": page["continuationToken"]}


def _json_artifact(queue: Any, task_id: str, name: str) -> Any:
    data, _ = taskcluster.download.downloadArtifactToBuf(taskId=task_id, runId=0, name=name, queueService=queue)
    return json.loads(bytes(data))
