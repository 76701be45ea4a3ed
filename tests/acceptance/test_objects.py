"""The object service through the official client: upload, finish, download, verify."""

from __future__ import annotations

import base64
import hashlib
import os
from datetime import timedelta

import httpx
import pytest
import taskcluster
import taskcluster.download
import taskcluster.upload
from taskcluster.exceptions import ObjectHashVerificationError, TaskclusterRestFailure

from cairn.domain.aggregate import acting_as
from cairn.domain.timestamps import utcnow
from cairn.projections.history import read_history
from tests.acceptance.storage_helpers import (
    blob_path,
    client_with_scopes,
    corrupt,
    in_one_day,
)

PROJECT = "cairn-tests"


def failure(code: int, call, *args) -> dict:
    with pytest.raises(TaskclusterRestFailure) as raised:
        call(*args)
    assert raised.value.status_code == code, raised.value.body
    return raised.value.body


def upload(objects, name: str, data: bytes, content_type: str = "application/octet-stream", **extra) -> str:
    upload_id = extra.pop("uploadId", None) or taskcluster.slugId()
    taskcluster.upload.uploadFromBuf(
        projectId=PROJECT, name=name, contentType=content_type, contentLength=len(data),
        expires=extra.pop("expires", None) or in_one_day(), uploadId=upload_id, data=data,
        objectService=objects, maxRetries=0, **extra,
    )
    return upload_id


def hashes_of(data: bytes) -> dict[str, str]:
    return {"sha256": hashlib.sha256(data).hexdigest(), "sha512": hashlib.sha512(data).hexdigest()}


def test_ping(server):
    assert server.anonymous("object").ping()["alive"] is True


@pytest.mark.parametrize("size", [100, 200_000], ids=["dataInline", "putUrl"])
def test_upload_and_download_verify_the_hashes(server, size):
    objects = server.client("object")
    data = bytes((i * 7) % 251 for i in range(size))
    upload(objects, "builds/app.bin", data)

    got, content_type = taskcluster.download.downloadToBuf(name="builds/app.bin", objectService=objects, maxRetries=0)
    assert bytes(got) == data
    assert content_type == "application/octet-stream"
    metadata = objects.object("builds/app.bin")
    assert metadata["projectId"] == PROJECT
    assert metadata["hashes"] == hashes_of(data)

    method = "dataInline" if size < taskcluster.upload.DATA_INLINE_MAX_SIZE else "putUrl"
    events = read_history(server.runtime.log, "object/builds/app.bin")
    assert [e.type for e in events] == ["ObjectUploadStarted", "ObjectDataReceived", "ObjectUploadFinished"]
    assert events[1].data["method"] == method
    # The log describes the data; it never holds it.
    assert all(len(str(e.data)) < 2000 for e in events)


def test_upload_negotiation_and_upload_id_idempotency(server):
    objects = server.client("object")
    upload_id, expires = taskcluster.slugId(), in_one_day()
    request = {"projectId": PROJECT, "uploadId": upload_id, "expires": expires, "proposedUploadMethods": {}}
    assert objects.createUpload("a/b", request)["uploadMethod"] == {}
    put = objects.createUpload("a/b", {**request, "proposedUploadMethods": {"putUrl": {"contentType": "text/plain", "contentLength": 5}}})
    method = put["uploadMethod"]["putUrl"]
    assert method["headers"] == {"Content-Type": "text/plain", "Content-Length": "5"}
    # Another uploadId, project or expiry for the same name is refused.
    assert failure(409, objects.createUpload, "a/b", {**request, "uploadId": taskcluster.slugId()})["code"] == "RequestConflict"
    assert failure(409, objects.createUpload, "a/b", {**request, "projectId": "other"})["code"] == "RequestConflict"

    # The PUT must carry the announced length and type.
    assert httpx.put(method["url"], content=b"hello!", headers={"Content-Type": "text/plain"}).status_code == 400
    assert httpx.put(method["url"], content=b"hello", headers={"Content-Type": "image/png"}).status_code == 400
    assert httpx.put(method["url"], content=b"hello", headers=method["headers"]).status_code == 200

    finish = {"projectId": PROJECT, "uploadId": upload_id}
    wrong = {**finish, "hashes": {"sha256": hashlib.sha256(b"other").hexdigest()}}
    assert failure(400, objects.finishUpload, "a/b", wrong)["code"] == "InputError"
    assert failure(409, objects.finishUpload, "a/b", {**finish, "uploadId": taskcluster.slugId()})["code"] == "RequestConflict"
    objects.finishUpload("a/b", {**finish, "hashes": {"sha256": hashlib.sha256(b"hello").hexdigest()}})
    objects.finishUpload("a/b", finish)
    assert objects.object("a/b")["hashes"] == hashes_of(b"hello")

    # Finished objects are immutable.
    assert failure(409, objects.createUpload, "a/b", request)["code"] == "RequestConflict"
    assert httpx.put(method["url"], content=b"HELLO", headers=method["headers"]).status_code == 409
    assert failure(409, objects.finishUpload, "a/b", {**finish, "hashes": {"md5": "x"}})["code"] == "RequestConflict"


def test_declared_hashes_must_agree(server):
    objects = server.client("object")
    data = b"some data"
    request = {
        "projectId": PROJECT, "uploadId": taskcluster.slugId(), "expires": in_one_day(),
        "hashes": {"sha256": hashlib.sha256(b"different").hexdigest()},
        "proposedUploadMethods": {"dataInline": {"contentType": "text/plain", "objectData": base64.b64encode(data).decode()}},
    }
    assert objects.createUpload("declared", request)["uploadMethod"] == {"dataInline": True}
    body = failure(400, objects.finishUpload, "declared", {"projectId": PROJECT, "uploadId": request["uploadId"]})
    assert "sha256" in body["message"]
    # A hash, once declared, cannot change.
    changed = {**request, "hashes": {"sha256": hashlib.sha256(data).hexdigest()}}
    assert failure(409, objects.createUpload, "declared", changed)["code"] == "RequestConflict"
    assert failure(404, objects.object, "declared")["code"] == "ResourceNotFound"


def test_download_methods(server):
    objects = server.client("object")
    data = b"<html>simple</html>"
    upload(objects, "site/index.html", data, content_type="text/html")

    simple = objects.startDownload("site/index.html", {"acceptDownloadMethods": {"simple": True}})
    assert simple["method"] == "simple"
    response = httpx.get(simple["url"])
    assert response.content == data
    assert response.headers["content-type"].startswith("text/html")

    get_url = objects.startDownload("site/index.html", {"acceptDownloadMethods": {"simple": True, "getUrl": True}})
    assert get_url["method"] == "getUrl"
    assert get_url["hashes"] == hashes_of(data)
    assert httpx.get(get_url["url"]).content == data

    body = failure(406, objects.startDownload, "site/index.html", {"acceptDownloadMethods": {}})
    assert body["code"] == "NoMatchingMethod"
    assert failure(404, objects.startDownload, "site/none", {"acceptDownloadMethods": {"getUrl": True}})["code"] == "ResourceNotFound"

    # download redirects; a bewit URL lets a browser use it.
    reader = client_with_scopes(server, "object", "object:download:site/*")
    redirected = httpx.get(reader.buildSignedUrl("download", "site/index.html"), follow_redirects=True)
    assert redirected.status_code == 200
    assert redirected.content == data
    assert httpx.get(reader.buildUrl("download", "site/index.html")).status_code == 403


def test_scopes(server):
    request = {"projectId": PROJECT, "uploadId": taskcluster.slugId(), "expires": in_one_day(), "proposedUploadMethods": {}}
    assert failure(403, server.anonymous("object").createUpload, "x", request)["code"] == "InsufficientScopes"
    other_project = client_with_scopes(server, "object", "object:upload:other:*")
    assert failure(403, other_project.createUpload, "x", request)["code"] == "InsufficientScopes"
    allowed = client_with_scopes(server, "object", f"object:upload:{PROJECT}:x")
    assert allowed.createUpload("x", request)["uploadId"] == request["uploadId"]
    assert failure(403, allowed.object, "x")["code"] == "InsufficientScopes"


def test_signed_urls_cannot_be_forged(server):
    objects = server.client("object")
    upload(objects, "forge/me", b"original")
    url = objects.startDownload("forge/me", {"acceptDownloadMethods": {"getUrl": True}})["url"]
    token = url.rsplit("/", 1)[1]
    claims, signature = token.split(".")
    tampered = url.replace(token, claims[:-2] + ("AA" if claims[-2:] != "AA" else "BB") + "." + signature)
    assert httpx.get(tampered).status_code == 401
    assert httpx.put(url, content=b"x", headers={"Content-Type": "application/octet-stream"}).status_code == 401
    assert httpx.get(server.root_url + "/object-data/garbage").status_code == 401


def test_a_corrupted_blob_is_detected_at_download(server):
    objects = server.client("object")
    data = b"precious bytes " * 2000
    upload(objects, "precious", data)
    corrupt(blob_path(server, "precious"))

    with pytest.raises(ObjectHashVerificationError):
        taskcluster.download.downloadToBuf(name="precious", objectService=objects, maxRetries=0)
    simple = objects.startDownload("precious", {"acceptDownloadMethods": {"simple": True}})
    with pytest.raises(httpx.HTTPError):
        httpx.get(simple["url"])


def test_expired_objects_are_forgotten_and_their_data_deleted(server):
    objects = server.client("object")
    upload(objects, "short-lived", b"soon gone", expires=taskcluster.stringDate(taskcluster.fromNow("1 hour")))
    upload(objects, "long-lived", b"still here", expires=taskcluster.stringDate(taskcluster.fromNow("3 days")))
    path = blob_path(server, "short-lived")
    request = {"projectId": PROJECT, "uploadId": taskcluster.slugId(), "expires": in_one_day(), "proposedUploadMethods": {}}
    objects.createUpload("never-finished", request)

    with acting_as("cairn/reaper"):
        assert server.runtime.storage_expiry(utcnow() + timedelta(hours=2)) == 1
        assert server.runtime.storage_expiry(utcnow() + timedelta(hours=25)) == 1

    assert failure(404, objects.object, "short-lived")["code"] == "ResourceNotFound"
    assert not os.path.exists(path)
    assert objects.object("long-lived")["hashes"] == hashes_of(b"still here")
    # The unfinished upload expired too; an expired name can be used again.
    objects.createUpload("never-finished", {**request, "uploadId": taskcluster.slugId()})
    upload(objects, "short-lived", b"back again")
    assert objects.object("short-lived")["hashes"] == hashes_of(b"back again")
    assert [e.type for e in read_history(server.runtime.log, "object/short-lived")] == [
        "ObjectUploadStarted", "ObjectDataReceived", "ObjectUploadFinished", "ObjectExpired",
        "ObjectUploadRestarted", "ObjectDataReceived", "ObjectUploadFinished",
    ]
