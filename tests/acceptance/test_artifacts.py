"""Artifacts through the official client: created by the run, fetched by anyone allowed to."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
import taskcluster
import taskcluster.download
import taskcluster.upload
from taskcluster.exceptions import ObjectHashVerificationError, TaskclusterArtifactError, TaskclusterRestFailure

from cairn.domain.aggregate import acting_as
from cairn.domain.timestamps import utcnow
from cairn.projections.history import read_history
from tests.acceptance.queue_helpers import claim_one, task_definition
from tests.acceptance.storage_helpers import (
    blob_path,
    client_with_scopes,
    corrupt,
    in_one_day,
    running_task,
)


@pytest.fixture
def settings_overrides():
    """A public deployment: the anonymous role grants public/ artifacts (and the other public reads)."""
    return {"anonymous_role": "public"}


def reference(url: str = "https://example.com/log.txt") -> dict:
    return {"storageType": "reference", "expires": in_one_day(), "contentType": "text/plain", "url": url}


def failure(code: int, call, *args) -> dict:
    with pytest.raises(TaskclusterRestFailure) as raised:
        call(*args)
    assert raised.value.status_code == code, raised.value.body
    return raised.value.body


def test_reference_artifact_redirects_to_its_url(server):
    task_id, worker = running_task(server)
    assert worker.createArtifact(task_id, 0, "public/log.txt", reference()) == {"storageType": "reference"}

    queue = server.client("queue")
    assert queue.getArtifact(task_id, 0, "public/log.txt") == {
        "storageType": "reference",
        "url": "https://example.com/log.txt",
    }
    response = httpx.get(server.root_url + f"/api/queue/v1/task/{task_id}/artifacts/public%2Flog.txt")
    assert response.status_code == 303
    assert response.headers["location"] == "https://example.com/log.txt"
    assert response.headers["x-taskcluster-artifact-storage-type"] == "reference"
    assert queue.artifact(task_id, 0, "public/log.txt") == {
        "storageType": "reference",
        "url": "https://example.com/log.txt",
    }


def test_link_artifact_is_followed_and_cycles_are_refused(server):
    task_id, worker = running_task(server)
    expires = in_one_day()
    worker.createArtifact(task_id, 0, "public/target", reference("https://example.com/target"))
    worker.createArtifact(task_id, 0, "public/alias", {"storageType": "link", "expires": expires, "artifact": "public/target"})
    worker.createArtifact(task_id, 0, "public/a", {"storageType": "link", "expires": expires, "artifact": "public/b"})
    worker.createArtifact(task_id, 0, "public/b", {"storageType": "link", "expires": expires, "artifact": "public/a"})

    queue = server.anonymous("queue")
    assert queue.getArtifact(task_id, 0, "public/alias")["url"] == "https://example.com/target"
    assert queue.latestArtifact(task_id, "public/alias") == {"storageType": "reference", "url": "https://example.com/target"}
    assert failure(400, queue.getArtifact, task_id, 0, "public/a")["code"] == "InputError"
    # Listing shows the link itself, not its target.
    assert server.client("queue").artifactInfo(task_id, 0, "public/alias")["storageType"] == "link"


def test_link_needs_the_scopes_of_its_target(server):
    task_id, worker = running_task(server)
    worker.createArtifact(task_id, 0, "private/secret", reference("https://example.com/secret"))
    worker.createArtifact(task_id, 0, "public/door", {"storageType": "link", "expires": in_one_day(), "artifact": "private/secret"})
    body = failure(403, server.anonymous("queue").getArtifact, task_id, 0, "public/door")
    assert body["code"] == "InsufficientScopes"
    allowed = client_with_scopes(server, "queue", "queue:get-artifact:private/secret")
    assert allowed.getArtifact(task_id, 0, "public/door")["url"] == "https://example.com/secret"


def test_error_artifact_answers_424_with_its_reason(server):
    task_id, worker = running_task(server)
    error = {"storageType": "error", "expires": in_one_day(), "reason": "file-missing-on-worker", "message": "no such file: out.tar"}
    assert worker.createArtifact(task_id, 0, "public/out.tar", error) == {"storageType": "error"}

    queue = server.anonymous("queue")
    body = failure(424, queue.getArtifact, task_id, 0, "public/out.tar")
    assert body == {"reason": "file-missing-on-worker", "message": "no such file: out.tar"}
    assert failure(424, queue.getLatestArtifact, task_id, "public/out.tar")["reason"] == "file-missing-on-worker"
    assert queue.artifact(task_id, 0, "public/out.tar") == {
        "storageType": "error",
        "reason": "file-missing-on-worker",
        "message": "no such file: out.tar",
    }
    with pytest.raises(TaskclusterArtifactError):
        taskcluster.download.downloadArtifactToBuf(taskId=task_id, runId=0, name="public/out.tar", queueService=queue)


def test_public_artifacts_need_no_credentials_and_private_ones_need_the_scope(server):
    task_id, worker = running_task(server)
    worker.createArtifact(task_id, 0, "public/open", reference("https://example.com/open"))
    worker.createArtifact(task_id, 0, "private/closed", reference("https://example.com/closed"))

    anonymous = server.anonymous("queue")
    assert anonymous.getArtifact(task_id, 0, "public/open")["url"] == "https://example.com/open"
    assert anonymous.getLatestArtifact(task_id, "public/open")["url"] == "https://example.com/open"
    body = failure(403, anonymous.getArtifact, task_id, 0, "private/closed")
    assert body["code"] == "InsufficientScopes"
    assert "queue:get-artifact:private/closed" in body["message"]
    # Refused before anything is looked up: no hint whether it exists.
    assert failure(403, anonymous.getLatestArtifact, taskcluster.slugId(), "private/closed")["code"] == "InsufficientScopes"

    other = client_with_scopes(server, "queue", "queue:get-artifact:private/other")
    assert failure(403, other.getArtifact, task_id, 0, "private/closed")["code"] == "InsufficientScopes"
    allowed = client_with_scopes(server, "queue", "queue:get-artifact:private/*")
    assert allowed.getArtifact(task_id, 0, "private/closed")["url"] == "https://example.com/closed"
    assert failure(404, allowed.getArtifact, task_id, 0, "private/missing")["code"] == "ResourceNotFound"


def test_bewit_url_fetches_a_private_artifact(server):
    task_id, worker = running_task(server)
    worker.createArtifact(task_id, 0, "private/report.html", reference("https://example.com/report.html"))
    holder = client_with_scopes(server, "queue", "queue:get-artifact:private/report.html")

    signed = holder.buildSignedUrl("getArtifact", task_id, 0, "private/report.html")
    response = httpx.get(signed)
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "https://example.com/report.html"

    unsigned = holder.buildUrl("getArtifact", task_id, 0, "private/report.html")
    assert httpx.get(unsigned).status_code == 403
    latest = holder.buildSignedUrl("getLatestArtifact", task_id, "private/report.html")
    assert httpx.get(latest).status_code == 303


def test_list_artifacts_in_pages(server):
    task_id, worker = running_task(server)
    names = [f"public/file-{i}.txt" for i in range(5)]
    for name in reversed(names):
        worker.createArtifact(task_id, 0, name, reference(f"https://example.com/{name}"))
    queue = server.client("queue")

    seen, token, pages = [], None, 0
    while True:
        query = {"limit": 2, **({"continuationToken": token} if token else {})}
        page = queue.listArtifacts(task_id, 0, query=query)
        pages += 1
        seen += [a["name"] for a in page["artifacts"]]
        token = page.get("continuationToken")
        if not token:
            break
    assert seen == names
    assert pages == 3

    first = queue.listLatestArtifacts(task_id, query={"limit": 4})
    assert [a["name"] for a in first["artifacts"]] == names[:4]
    rest = queue.listLatestArtifacts(task_id, query={"continuationToken": first["continuationToken"]})
    assert [a["name"] for a in rest["artifacts"]] == names[4:]
    assert "continuationToken" not in rest

    info = queue.latestArtifactInfo(task_id, "public/file-0.txt")
    assert info == {
        "storageType": "reference",
        "name": "public/file-0.txt",
        "expires": info["expires"],
        "contentType": "text/plain",
    }
    assert failure(404, queue.listArtifacts, task_id, 1)["code"] == "ResourceNotFound"
    assert failure(404, queue.artifactInfo, task_id, 0, "public/none")["code"] == "ResourceNotFound"


def test_creation_is_idempotent_with_the_allowed_changes_and_conflicts_otherwise(server):
    task_id, worker = running_task(server)
    first = reference("https://example.com/one")
    worker.createArtifact(task_id, 0, "public/ref", first)
    worker.createArtifact(task_id, 0, "public/ref", first)
    # A reference may change its URL, and be replaced by a link.
    worker.createArtifact(task_id, 0, "public/ref", {**first, "url": "https://example.com/two"})
    assert server.client("queue").getArtifact(task_id, 0, "public/ref")["url"] == "https://example.com/two"
    worker.createArtifact(task_id, 0, "public/target", reference())
    worker.createArtifact(task_id, 0, "public/ref", {"storageType": "link", "expires": first["expires"], "artifact": "public/target"})
    assert server.client("queue").artifactInfo(task_id, 0, "public/ref")["storageType"] == "link"

    error = {"storageType": "error", "expires": in_one_day(), "reason": "file-missing-on-worker", "message": "gone"}
    worker.createArtifact(task_id, 0, "public/err", error)
    worker.createArtifact(task_id, 0, "public/err", error)
    assert failure(409, worker.createArtifact, task_id, 0, "public/err", {**error, "message": "other"})["code"] == "RequestConflict"
    assert failure(409, worker.createArtifact, task_id, 0, "public/err", reference())["code"] == "RequestConflict"
    # Expiry may be extended, not shortened.
    later = taskcluster.stringDate(taskcluster.fromNow("2 days"))
    worker.createArtifact(task_id, 0, "public/err", {**error, "expires": later})
    assert failure(409, worker.createArtifact, task_id, 0, "public/err", error)["code"] == "RequestConflict"


def test_creation_rules(server):
    task_id, worker = running_task(server, expires=taskcluster.stringDate(taskcluster.fromNow("2 days")))
    too_late = taskcluster.stringDate(taskcluster.fromNow("3 days"))
    body = failure(400, worker.createArtifact, task_id, 0, "public/x", {**reference(), "expires": too_late})
    assert body["code"] == "InputError"
    past = taskcluster.stringDate(taskcluster.fromNow("-1 hour"))
    assert failure(400, worker.createArtifact, task_id, 0, "public/x", {**reference(), "expires": past})["code"] == "InputError"
    # Another run's scope is not this run's.
    assert failure(403, worker.createArtifact, task_id, 1, "public/x", reference())["code"] == "InsufficientScopes"
    root = server.client("queue")
    assert failure(400, root.createArtifact, task_id, 1, "public/x", reference())["code"] == "InputError"
    assert failure(400, root.createArtifact, taskcluster.slugId(), 0, "public/x", reference())["code"] == "InputError"

    worker.reportCompleted(task_id, 0)
    body = failure(409, worker.createArtifact, task_id, 0, "public/late", reference())
    assert body["code"] == "RequestConflict"


def test_an_exception_run_takes_artifacts_for_a_while(server):
    task_id, worker = running_task(server, retries=0)
    worker.reportException(task_id, 0, {"reason": "malformed-payload"})
    assert worker.createArtifact(task_id, 0, "public/logs/live.log", reference()) == {"storageType": "reference"}


def test_object_artifact_uploaded_and_downloaded_with_the_client(server):
    task_id, worker = running_task(server)
    for name, data in (("public/small.bin", b"tiny artifact"), ("public/large.bin", bytes(range(256)) * 400)):
        created = worker.createArtifact(
            task_id, 0, name, {"storageType": "object", "expires": in_one_day(), "contentType": "application/octet-stream"}
        )
        assert created["storageType"] == "object"
        assert created["name"] == f"t/{task_id}/0/{name}"
        # The same request again hands out the same upload.
        again = worker.createArtifact(
            task_id, 0, name, {"storageType": "object", "expires": created["expires"], "contentType": "application/octet-stream"}
        )
        assert again["uploadId"] == created["uploadId"]
        # Not present until finished.
        assert failure(404, server.client("queue").getArtifact, task_id, 0, name)["code"] == "ResourceNotFound"

        uploader = taskcluster.Object({"rootUrl": server.root_url, "credentials": created["credentials"]})
        taskcluster.upload.uploadFromBuf(
            projectId=created["projectId"],
            name=created["name"],
            contentType="application/octet-stream",
            contentLength=len(data),
            expires=created["expires"],
            uploadId=created["uploadId"],
            data=data,
            objectService=uploader,
            maxRetries=0,
        )
        assert worker.finishArtifact(task_id, 0, name, {"uploadId": created["uploadId"]}) is None
        assert worker.finishArtifact(task_id, 0, name, {"uploadId": created["uploadId"]}) is None

        queue = server.anonymous("queue")
        got, content_type = taskcluster.download.downloadArtifactToBuf(
            taskId=task_id, runId=0, name=name, queueService=queue, maxRetries=0
        )
        assert bytes(got) == data
        assert content_type == "application/octet-stream"
        latest, _ = taskcluster.download.downloadArtifactToBuf(taskId=task_id, name=name, queueService=queue, maxRetries=0)
        assert bytes(latest) == data
        # A plain HTTP client follows the redirect to the same data.
        followed = httpx.get(server.root_url + f"/api/queue/v1/task/{task_id}/runs/0/artifacts/{name}", follow_redirects=True)
        assert followed.status_code == 200
        assert followed.content == data
    info = server.client("queue").artifactInfo(task_id, 0, "public/small.bin")
    assert info["storageType"] == "object"


def test_object_artifact_needs_its_upload_id_to_finish(server):
    task_id, worker = running_task(server)
    created = worker.createArtifact(
        task_id, 0, "public/a.bin", {"storageType": "object", "expires": in_one_day(), "contentType": "application/octet-stream"}
    )
    assert failure(400, worker.finishArtifact, task_id, 0, "public/a.bin", {"uploadId": taskcluster.slugId()})["code"] == "InputError"
    # Nothing uploaded yet.
    assert failure(400, worker.finishArtifact, task_id, 0, "public/a.bin", {"uploadId": created["uploadId"]})["code"] == "InputError"
    worker.createArtifact(task_id, 0, "public/ref", reference())
    assert failure(400, worker.finishArtifact, task_id, 0, "public/ref", {"uploadId": created["uploadId"]})["code"] == "InputError"
    assert failure(404, worker.finishArtifact, task_id, 0, "public/none", {"uploadId": created["uploadId"]})["code"] == "ResourceNotFound"


def test_corrupted_object_artifact_is_detected_at_download(server):
    task_id, worker = running_task(server)
    data = b"the bytes a worker produced\n" * 1000
    created = worker.createArtifact(
        task_id, 0, "public/build.tar", {"storageType": "object", "expires": in_one_day(), "contentType": "application/x-tar"}
    )
    uploader = taskcluster.Object({"rootUrl": server.root_url, "credentials": created["credentials"]})
    taskcluster.upload.uploadFromBuf(
        projectId=created["projectId"], name=created["name"], contentType="application/x-tar",
        contentLength=len(data), expires=created["expires"], uploadId=created["uploadId"],
        data=data, objectService=uploader, maxRetries=0,
    )
    worker.finishArtifact(task_id, 0, "public/build.tar", {"uploadId": created["uploadId"]})
    corrupt(blob_path(server, created["name"]))

    with pytest.raises(ObjectHashVerificationError):
        taskcluster.download.downloadArtifactToBuf(
            taskId=task_id, runId=0, name="public/build.tar", queueService=server.anonymous("queue"), maxRetries=0
        )
    # A plain client following the redirect is cut short rather than handed bad data.
    with pytest.raises(httpx.HTTPError):
        httpx.get(server.root_url + f"/api/queue/v1/task/{task_id}/runs/0/artifacts/public/build.tar", follow_redirects=True)


def test_s3_artifact_is_put_to_a_signed_url(server):
    task_id, worker = running_task(server)
    created = worker.createArtifact(
        task_id, 0, "private/data.json", {"storageType": "s3", "expires": in_one_day(), "contentType": "application/json"}
    )
    assert created["storageType"] == "s3"
    assert created["contentType"] == "application/json"
    assert httpx.put(created["putUrl"], content=b"{}", headers={"Content-Type": "text/plain"}).status_code == 400
    assert httpx.put(created["putUrl"], content=b'{"ok": true}', headers={"Content-Type": "application/json"}).status_code == 200
    assert httpx.put(created["putUrl"][:-3] + "abc", content=b"{}", headers={"Content-Type": "application/json"}).status_code == 401

    reader = client_with_scopes(server, "queue", "queue:get-artifact:private/data.json")
    url = reader.getArtifact(task_id, 0, "private/data.json")["url"]
    fetched = httpx.get(url)
    assert fetched.status_code == 200
    assert fetched.content == b'{"ok": true}'
    assert fetched.headers["content-type"].startswith("application/json")
    assert reader.artifact(task_id, 0, "private/data.json")["storageType"] == "s3"


def test_expired_artifacts_leave_the_view_and_the_events_stay(server):
    task_id, worker = running_task(server)
    worker.createArtifact(task_id, 0, "public/old", reference())
    worker.createArtifact(task_id, 0, "public/new", {**reference(), "expires": taskcluster.stringDate(taskcluster.fromNow("3 days"))})
    with acting_as("cairn/reaper"):
        server.runtime.storage_expiry(utcnow() + timedelta(days=2))

    queue = server.client("queue")
    assert [a["name"] for a in queue.listArtifacts(task_id, 0)["artifacts"]] == ["public/new"]
    assert failure(404, queue.getArtifact, task_id, 0, "public/old")["code"] == "ResourceNotFound"
    history = [e.type for e in read_history(server.runtime.log, f"task/{task_id}")]
    assert history.count("TaskArtifactCreated") == 2
    assert history.count("TaskArtifactExpired") == 1


def test_artifacts_of_a_retried_task_belong_to_their_run(server):
    queue = server.client("queue")
    task_id = taskcluster.slugId()
    queue.createTask(task_id, task_definition(retries=1))
    claim_one(queue)
    queue.createArtifact(task_id, 0, "public/log", reference("https://example.com/run0"))
    queue.reportException(task_id, 0, {"reason": "worker-shutdown"})
    claim_one(queue)
    queue.createArtifact(task_id, 1, "public/log", reference("https://example.com/run1"))
    assert queue.getLatestArtifact(task_id, "public/log")["url"] == "https://example.com/run1"
    assert queue.getArtifact(task_id, 0, "public/log")["url"] == "https://example.com/run0"
