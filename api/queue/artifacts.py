"""The queue's artifact endpoints: what runs leave behind, and how to fetch it.

Declared on the queue service itself (imported by ``queue_api``). Fetching
follows links, checking ``queue:get-artifact:<name>`` for every name on the
way. Nothing is public by rule: anyone may fetch ``public/`` artifacts
without credentials because the ``anonymous`` role grants
``queue:get-artifact:public/*`` (see ``domain/auth/anonymous_role.py``).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import orjson
from starlette.responses import Response

from cairn.api.app import json_response
from cairn.api.call import Call
from cairn.api.errors import InputError, ResourceExpired, ResourceNotFound
from cairn.api.objects.handlers import simple_url
from cairn.api.pagination import page
from cairn.api.queue.tasks import RUN_ID, SLUGID, queue
from cairn.api.schemas import load_schemas
from cairn.domain.auth.credentials import create_temporary_credentials
from cairn.domain.queue.artifacts import object_name, public_view, s3_blob_key
from cairn.domain.timestamps import iso, parse_time, utcnow

NAME = r"[\x20-\x7e]+"
RUN_ARTIFACT = {"taskId": SLUGID, "runId": RUN_ID, "name": NAME}
TASK_ARTIFACT = {"taskId": SLUGID, "name": NAME}
GET_SCOPES = {"AllOf": [{"for": "name", "in": "names", "each": "queue:get-artifact:<name>"}]}
STORAGE_HEADER = "x-taskcluster-artifact-storage-type"
UPLOAD_CREDENTIALS_LIFETIME = timedelta(hours=24)
DOWNLOAD_CREDENTIALS_LIFETIME = timedelta(hours=1)
S3_PUT_LIFETIME = timedelta(minutes=45)
S3_GET_LIFETIME = timedelta(minutes=30)
_CLIENT_ID_SAFE = re.compile(r"[A-Za-z0-9!@/:.+|_-]+")


def _authorize_names(call: Call, names: list[str]) -> None:
    call.authorize(names=names)


def _latest_run_id(call: Call, task_id: str) -> int:
    row = call.runtime.queue_reads.task_rows([task_id]).get(task_id)
    if row is None:
        raise ResourceNotFound(f"Task {task_id} not found")
    runs = orjson.loads(row["status"])["runs"]
    if not runs:
        raise ResourceNotFound(f"Task {task_id} doesn't have any runs")
    return len(runs) - 1


def _follow_links(call: Call, task_id: str, run_id: int, name: str) -> dict[str, Any]:
    """The artifact ``name`` resolves to, authorizing every name on the way."""
    reads = call.runtime.storage_reads
    names: list[str] = []
    while True:
        names.append(name)
        _authorize_names(call, names)
        artifact = reads.artifact(task_id, run_id, name)
        if artifact is None or not artifact["present"]:
            raise ResourceNotFound("Artifact not found")
        if parse_time(artifact["expires"]) < utcnow():
            raise ResourceExpired("Artifact expired")
        if artifact["storageType"] != "link":
            return artifact
        name = artifact["details"]["artifact"]
        if name in names:
            raise InputError("Artifact leads to a link cycle")


def _credentials(call: Call, client_id: str, expiry: Any, scopes: list[str]) -> dict[str, str]:
    issuer = call.runtime.queue_client
    return create_temporary_credentials(
        issuer.client_id, issuer.access_token, utcnow() - timedelta(minutes=15), expiry, scopes, name=client_id
    )


def _object_of(call: Call, artifact: dict[str, Any]) -> dict[str, Any]:
    name = object_name(artifact["taskId"], artifact["runId"], artifact["name"])
    found = call.runtime.storage_reads.object(name)
    if found is None or not found["finished"] or found["blobKey"] is None:
        raise ResourceNotFound("Object does not exist.")
    return found


def _s3_url(call: Call, artifact: dict[str, Any]) -> str:
    blob = s3_blob_key(artifact["taskId"], artifact["runId"], artifact["name"])
    url, _ = call.runtime.data_urls.download_url(
        call.runtime.settings.root_url, blob, artifact["contentType"], S3_GET_LIFETIME
    )
    return url


def _download_response(call: Call, artifact: dict[str, Any]) -> Response:
    kind = artifact["storageType"]
    headers = {STORAGE_HEADER: kind}
    if kind == "error":
        details = artifact["details"]
        return json_response({"reason": details["reason"], "message": details["message"]}, 424, headers)
    if kind == "object":
        url = simple_url(call, _object_of(call, artifact))
    elif kind == "s3":
        url = _s3_url(call, artifact)
    else:
        url = artifact["details"]["url"]
    body = {"storageType": kind, "url": url}
    if call.runtime.validate_output:
        problems = load_schemas().errors(queue.schema_uri("get-artifact-response"), body)
        if problems:
            raise RuntimeError(f"{call.endpoint.name} produced invalid output: {problems}")
    return json_response(body, 303, {**headers, "Location": url})


def _content(call: Call, artifact: dict[str, Any]) -> dict[str, Any]:
    kind = artifact["storageType"]
    if kind == "object":
        found = _object_of(call, artifact)
        task_id, run_id, name = artifact["taskId"], artifact["runId"], artifact["name"]
        client_id = f"artifact-download/{task_id}/{run_id}/{name}"
        if not _CLIENT_ID_SAFE.fullmatch(client_id):
            client_id = f"artifact-download/{task_id}/{run_id}"
        expiry = utcnow() + DOWNLOAD_CREDENTIALS_LIFETIME
        credentials = _credentials(call, client_id, expiry, [f"object:download:{found['name']}"])
        return {"storageType": kind, "name": found["name"], "credentials": credentials}
    if kind == "error":
        details = artifact["details"]
        return {"storageType": kind, "reason": details["reason"], "message": details["message"]}
    url = _s3_url(call, artifact) if kind == "s3" else artifact["details"]["url"]
    return {"storageType": kind, "url": url}


# creating


@queue.endpoint(
    "createArtifact",
    "POST",
    "/task/<taskId>/runs/<runId>/artifacts/<name>",
    title="Create Artifact",
    category="Artifacts",
    scopes="queue:create-artifact:<taskId>/<runId>",
    input="post-artifact-request",
    output="post-artifact-response",
    params=RUN_ARTIFACT,
    greedy=("name",),
)
def create_artifact(call: Call) -> dict[str, Any]:
    """Create an artifact of a running run; repeating the same request is harmless.

    ``object`` answers with credentials to upload the data to the object
    service (then call finishArtifact); ``s3`` with a URL to PUT the data to.
    """
    task_id, run_id, name = call.params["taskId"], int(call.params["runId"]), call.params["name"]
    now = utcnow()
    task, artifact = call.runtime.artifacts.create_artifact(task_id, run_id, name, call.body, now)
    kind = artifact["storageType"]
    if kind == "object":
        run = task.run(run_id)
        project_id = task.definition["projectId"]
        data_name = object_name(task_id, run_id, name)
        expiry = min(parse_time(artifact["expires"]), now + UPLOAD_CREDENTIALS_LIFETIME)
        credentials = _credentials(
            call,
            f"artifact-upload/{task_id}/{run_id}/on/{run['workerGroup']}/{run['workerId']}",
            expiry,
            [f"object:upload:{project_id}:{data_name}"],
        )
        return {
            "storageType": kind,
            "name": data_name,
            "projectId": project_id,
            "uploadId": artifact["details"]["uploadId"],
            "expires": artifact["expires"],
            "credentials": credentials,
        }
    if kind == "s3":
        url, expires = call.runtime.data_urls.upload_url(
            call.runtime.settings.root_url,
            {"b": s3_blob_key(task_id, run_id, name)},
            artifact["contentType"],
            S3_PUT_LIFETIME,
        )
        return {"storageType": kind, "putUrl": url, "expires": iso(expires), "contentType": artifact["contentType"]}
    return {"storageType": kind}


@queue.endpoint(
    "finishArtifact",
    "PUT",
    "/task/<taskId>/runs/<runId>/artifacts/<name>",
    title="Finish Artifact",
    category="Artifacts",
    scopes="queue:create-artifact:<taskId>/<runId>",
    input="finish-artifact-request",
    params=RUN_ARTIFACT,
    greedy=("name",),
)
def finish_artifact(call: Call) -> None:
    """Mark an object artifact present once its data is uploaded; only object artifacts are finished."""
    call.runtime.artifacts.finish_artifact(
        call.params["taskId"], int(call.params["runId"]), call.params["name"], call.body["uploadId"]
    )


# fetching


@queue.endpoint(
    "getArtifact",
    "GET",
    "/task/<taskId>/runs/<runId>/artifacts/<name>",
    title="Get Artifact Data from Run",
    category="Artifacts",
    scopes=GET_SCOPES,
    output="get-artifact-response",
    params=RUN_ARTIFACT,
    greedy=("name",),
    deferred_auth=True,
)
def get_artifact(call: Call) -> Response:
    """Redirect (303) to an artifact's data; error artifacts answer 424 with their reason."""
    artifact = _follow_links(call, call.params["taskId"], int(call.params["runId"]), call.params["name"])
    return _download_response(call, artifact)


@queue.endpoint(
    "getLatestArtifact",
    "GET",
    "/task/<taskId>/artifacts/<name>",
    title="Get Artifact Data from Latest Run",
    category="Artifacts",
    scopes=GET_SCOPES,
    output="get-artifact-response",
    params=TASK_ARTIFACT,
    greedy=("name",),
    deferred_auth=True,
)
def get_latest_artifact(call: Call) -> Response:
    """getArtifact, from the latest run of the task."""
    task_id, name = call.params["taskId"], call.params["name"]
    _authorize_names(call, [name])
    artifact = _follow_links(call, task_id, _latest_run_id(call, task_id), name)
    return _download_response(call, artifact)


@queue.endpoint(
    "artifact",
    "GET",
    "/task/<taskId>/runs/<runId>/artifact-content/<name>",
    title="Get Artifact Content From Run",
    category="Artifacts",
    scopes=GET_SCOPES,
    output="artifact-content-response",
    params=RUN_ARTIFACT,
    greedy=("name",),
    deferred_auth=True,
)
def artifact_content(call: Call) -> dict[str, Any]:
    """How to get an artifact's data (object credentials, a URL, or the error), following links."""
    artifact = _follow_links(call, call.params["taskId"], int(call.params["runId"]), call.params["name"])
    return _content(call, artifact)


@queue.endpoint(
    "latestArtifact",
    "GET",
    "/task/<taskId>/artifact-content/<name>",
    title="Get Artifact Content From Latest Run",
    category="Artifacts",
    scopes=GET_SCOPES,
    output="artifact-content-response",
    params=TASK_ARTIFACT,
    greedy=("name",),
    deferred_auth=True,
)
def latest_artifact_content(call: Call) -> dict[str, Any]:
    """artifact, from the latest run of the task."""
    task_id, name = call.params["taskId"], call.params["name"]
    _authorize_names(call, [name])
    artifact = _follow_links(call, task_id, _latest_run_id(call, task_id), name)
    return _content(call, artifact)


# listing


def _artifact_page(call: Call, task_id: str, run_id: int) -> dict[str, Any]:
    limit, after = page.bounds(call)
    rows = call.runtime.storage_reads.artifacts(task_id, run_id, after, limit + 1)
    body: dict[str, Any] = {"artifacts": [public_view(r) for r in rows[:limit]]}
    if len(rows) > limit:
        body["continuationToken"] = page.token(rows[limit - 1]["name"])
    return body


@queue.endpoint(
    "listArtifacts",
    "GET",
    "/task/<taskId>/runs/<runId>/artifacts",
    title="Get Artifacts from Run",
    category="Artifacts",
    scopes="queue:list-artifacts:<taskId>:<runId>",
    output="list-artifacts-response",
    query=("continuationToken", "limit"),
    params={"taskId": SLUGID, "runId": RUN_ID},
)
def list_artifacts(call: Call) -> dict[str, Any]:
    """The artifacts of a run, by name, a page at a time (at most 1000)."""
    task_id, run_id = call.params["taskId"], int(call.params["runId"])
    if run_id > _latest_run_id(call, task_id):
        raise ResourceNotFound(f"Task {task_id} has no run with runId {run_id}")
    return _artifact_page(call, task_id, run_id)


@queue.endpoint(
    "listLatestArtifacts",
    "GET",
    "/task/<taskId>/artifacts",
    title="Get Artifacts from Latest Run",
    category="Artifacts",
    scopes="queue:list-artifacts:<taskId>",
    output="list-artifacts-response",
    query=("continuationToken", "limit"),
    params={"taskId": SLUGID},
)
def list_latest_artifacts(call: Call) -> dict[str, Any]:
    """listArtifacts, for the latest run of the task."""
    task_id = call.params["taskId"]
    return _artifact_page(call, task_id, _latest_run_id(call, task_id))


def _info(call: Call, task_id: str, run_id: int, name: str) -> dict[str, Any]:
    artifact = call.runtime.storage_reads.artifact(task_id, run_id, name)
    if artifact is None or not artifact["present"]:
        raise ResourceNotFound("Artifact not found")
    return public_view(artifact)


@queue.endpoint(
    "artifactInfo",
    "GET",
    "/task/<taskId>/runs/<runId>/artifact-info/<name>",
    title="Get Artifact Information From Run",
    category="Artifacts",
    scopes="queue:list-artifacts:<taskId>:<runId>",
    output="artifact-response",
    params=RUN_ARTIFACT,
    greedy=("name",),
)
def artifact_info(call: Call) -> dict[str, Any]:
    """What listArtifacts says of one artifact; links are not followed, no data is reached."""
    return _info(call, call.params["taskId"], int(call.params["runId"]), call.params["name"])


@queue.endpoint(
    "latestArtifactInfo",
    "GET",
    "/task/<taskId>/artifact-info/<name>",
    title="Get Artifact Information From Latest Run",
    category="Artifacts",
    scopes="queue:list-artifacts:<taskId>",
    output="artifact-response",
    params=TASK_ARTIFACT,
    greedy=("name",),
)
def latest_artifact_info(call: Call) -> dict[str, Any]:
    """artifactInfo, for the latest run of the task."""
    task_id = call.params["taskId"]
    return _info(call, task_id, _latest_run_id(call, task_id), call.params["name"])
