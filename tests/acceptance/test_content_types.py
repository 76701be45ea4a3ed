"""Content types: what was stored is what a download says, exactly."""

from __future__ import annotations

import httpx
import taskcluster
import taskcluster.download
import taskcluster.upload

from tests.acceptance.storage_helpers import client_with_scopes, in_one_day, running_task


def test_an_object_stored_as_text_plain_downloads_as_exactly_text_plain(server):
    objects = server.client("object")
    data = b"hello\n"
    taskcluster.upload.uploadFromBuf(
        projectId="cairn-tests", name="notes/hello.txt", contentType="text/plain", contentLength=len(data),
        expires=in_one_day(), uploadId=taskcluster.slugId(), data=data, objectService=objects, maxRetries=0,
    )
    url = objects.startDownload("notes/hello.txt", {"acceptDownloadMethods": {"simple": True}})["url"]
    response = httpx.get(url)
    assert response.status_code == 200
    assert response.content == data
    assert response.headers["content-type"] == "text/plain"
    fetched, content_type = taskcluster.download.downloadToBuf(name="notes/hello.txt", objectService=objects)
    assert (fetched, content_type) == (data, "text/plain")


def test_an_s3_artifact_downloads_with_its_stored_content_type(server):
    task_id, worker = running_task(server)
    created = worker.createArtifact(
        task_id, 0, "public/notes.txt", {"storageType": "s3", "expires": in_one_day(), "contentType": "text/plain"}
    )
    assert httpx.put(created["putUrl"], content=b"notes", headers={"Content-Type": "text/plain"}).status_code == 200
    url = server.client("queue").getArtifact(task_id, 0, "public/notes.txt")["url"]
    assert httpx.get(url).headers["content-type"] == "text/plain"


def test_an_artifact_created_without_a_content_type_gets_one_from_its_name(server):
    task_id, worker = running_task(server)
    worker.createArtifact(task_id, 0, "public/report.html", {
        "storageType": "reference", "expires": in_one_day(), "contentType": "text/html",
        "url": "https://example.com/report.html",
    })
    for name, expected in (("public/latest.html", "text/html"), ("public/data.json", "application/json"),
                           ("public/blob", "application/binary")):
        worker.createArtifact(task_id, 0, name, {
            "storageType": "link", "expires": in_one_day(), "artifact": "public/report.html",
        })
        listed = {a["name"]: a["contentType"] for a in client_with_scopes(
            server, "queue", "queue:list-artifacts:*").listArtifacts(task_id, 0)["artifacts"]}
        assert listed[name] == expected, listed
