"""RFC 165: public access is the anonymous role's scopes, and editing the role makes a deployment private."""

from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest
from taskcluster.exceptions import TaskclusterRestFailure

from cairn.domain.auth.anonymous_role import PUBLIC_SCOPES, create_anonymous_role
from cairn.domain.auth.model import role_key
from cairn.projections.history import read_history
from cairn.settings import Settings
from tests.acceptance.storage_helpers import client_with_scopes, in_one_day, running_task

PUBLIC_ARTIFACT = "queue:get-artifact:public/*"


def reference(url: str) -> dict:
    return {"storageType": "reference", "expires": in_one_day(), "contentType": "text/plain", "url": url}


def refused(call, *args) -> dict:
    with pytest.raises(TaskclusterRestFailure) as raised:
        call(*args)
    assert raised.value.status_code == 403, raised.value.body
    return raised.value.body


def test_a_new_deployment_is_public_by_default():
    assert Settings.from_env({}).anonymous_role == "public"
    with pytest.raises(ValueError, match="CAIRN_ANONYMOUS_ROLE"):
        Settings.from_env({"CAIRN_ANONYMOUS_ROLE": "open"})


@pytest.mark.parametrize("settings_overrides", [{"anonymous_role": "public"}])
def test_the_anonymous_role_is_created_at_first_start_like_any_role(server):
    auth = server.client("auth")
    role = auth.role("anonymous")
    assert role["scopes"] == sorted(PUBLIC_SCOPES)
    assert PUBLIC_ARTIFACT in role["scopes"]
    events = read_history(server.runtime.log, role_key("anonymous"))
    assert [(e.type, e.actor) for e in events] == [("RoleCreated", "static/cairn")]
    # Anyone holds its scopes, without credentials.
    assert PUBLIC_ARTIFACT in server.anonymous("auth").currentScopes()["scopes"]
    # Later starts leave the role as the operators left it, even deleted.
    auth.deleteRole("anonymous")
    assert create_anonymous_role(server.runtime.log, server.runtime.auth, "public") is False
    with pytest.raises(TaskclusterRestFailure):
        auth.role("anonymous")


@pytest.mark.parametrize("settings_overrides", [{"anonymous_role": "public"}])
def test_removing_the_public_artifact_scope_makes_public_artifacts_need_credentials(server):
    task_id, worker = running_task(server, routes=["index.rfc165.build"])
    worker.createArtifact(task_id, 0, "public/log.txt", reference("https://example.com/log.txt"))
    worker.reportCompleted(task_id, 0)
    auth, anonymous = server.client("auth"), server.anonymous("queue")
    index_url = f"{server.root_url}/api/index/v1/task/rfc165.build/artifacts/{quote('public/log.txt', safe='')}"
    queue_url = f"{server.root_url}/api/queue/v1/task/{task_id}/artifacts/{quote('public/log.txt', safe='')}"
    assert anonymous.getArtifact(task_id, 0, "public/log.txt")["url"] == "https://example.com/log.txt"

    role = auth.role("anonymous")
    private = [s for s in role["scopes"] if s != PUBLIC_ARTIFACT]
    auth.updateRole("anonymous", {"description": role["description"], "scopes": private})

    body = refused(anonymous.getArtifact, task_id, 0, "public/log.txt")
    assert body["code"] == "InsufficientScopes"
    assert "queue:get-artifact:public/log.txt" in body["message"]
    refused(anonymous.getLatestArtifact, task_id, "public/log.txt")
    holder = client_with_scopes(server, "queue", "queue:get-artifact:public/log.txt")
    assert holder.getArtifact(task_id, 0, "public/log.txt")["url"] == "https://example.com/log.txt"
    # The index follows the role: anonymous callers are refused, and the
    # redirect it gives to those allowed is signed, since the queue would refuse a plain one.
    _wait_for_index(server, "rfc165.build")
    assert httpx.get(index_url, follow_redirects=False).status_code == 403
    finder = client_with_scopes(server, "index", "queue:get-artifact:public/log.txt")
    redirect = httpx.get(finder.buildSignedUrl("findArtifactFromTask", "rfc165.build", "public/log.txt"),
                         follow_redirects=False)
    assert redirect.status_code == 303
    assert redirect.headers["location"].startswith(queue_url + "?bewit=")
    assert httpx.get(redirect.headers["location"], follow_redirects=False).status_code == 303

    # Put back, public artifacts are public again, with plain URLs.
    auth.updateRole("anonymous", {"description": role["description"], "scopes": role["scopes"]})
    assert anonymous.getArtifact(task_id, 0, "public/log.txt")["url"] == "https://example.com/log.txt"
    redirect = httpx.get(index_url, follow_redirects=False)
    assert redirect.status_code == 303
    assert redirect.headers["location"] == queue_url


@pytest.mark.parametrize("settings_overrides", [{"anonymous_role": "private"}])
def test_a_private_deployment_starts_with_an_empty_anonymous_role(server):
    assert server.client("auth").role("anonymous")["scopes"] == []
    task_id, worker = running_task(server)
    worker.createArtifact(task_id, 0, "public/log.txt", reference("https://example.com/log.txt"))
    assert refused(server.anonymous("queue").getArtifact, task_id, 0, "public/log.txt")["code"] == "InsufficientScopes"
    assert server.client("queue").getArtifact(task_id, 0, "public/log.txt")["url"] == "https://example.com/log.txt"


def _wait_for_index(server, path: str) -> None:
    import time

    index = server.client("index")
    give_up = time.monotonic() + 15
    while True:
        try:
            index.findTask(path)
            return
        except TaskclusterRestFailure:
            assert time.monotonic() < give_up, "the task was not indexed"
            time.sleep(0.05)
