"""The queue's artifact endpoints: what runs leave behind, and how to fetch it.

Included in the queue service (``api/queue/service.py``). Fetching
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
from cairn.api.endpoints import Endpoints, schema_uri
from cairn.api.errors import InputError, ResourceExpired, ResourceNotFound
from cairn.api.objects.handlers import simple_url
from cairn.api.pagination import page
from cairn.api.queue.context import QueueContext
from cairn.api.queue.route_params import RUN_ID, SLUGID
from cairn.api.schemas import load_schemas
from cairn.domain.queue.artifacts import object_name, public_view, s3_blob_key
from cairn.domain.queue.run_credentials import issue
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

endpoints = Endpoints()
QueueCall = Call[QueueContext]


def _authorize_names(call: QueueCall, names: list[str]) -> None:
    call.authorize(names=names)


def _latest_run_id(call: QueueCall, task_id: str) -> int:
    row = call.context.reads.task_rows([task_id]).get(task_id)
    if row is None:
        raise ResourceNotFound(f"Task {task_id} not found")
    runs = orjson.loads(row["status"])["runs"]
    if not runs:
        raise ResourceNotFound(f"Task {task_id} doesn't have any runs")
    return len(runs) - 1


def _follow_links(call: QueueCall, task_id: str, run_id: int, name: str) -> dict[str, Any]:
    """The artifact ``name`` resolves to, authorizing every name on the way."""
    reads = call.context.storage
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


def _credentials(call: QueueCall, client_id: str, expiry: Any, scopes: list[str]) -> dict[str, str]:
    return issue(call.context.credentials, client_id, expiry, scopes, utcnow())


def _object_of(call: QueueCall, artifact: dict[str, Any]) -> dict[str, Any]:
    name = object_name(artifact["taskId"], artifact["runId"], artifact["name"])
    found = call.context.storage.object(name)
    if found is None or not found["finished"] or found["blobKey"] is None:
        raise ResourceNotFound("Object does not exist.")
    return found


def _s3_url(call: QueueCall, artifact: dict[str, Any]) -> str:
    blob = s3_blob_key(artifact["taskId"], artifact["runId"], artifact["name"])
    url, _ = call.context.links.download_url(blob, artifact["contentType"], S3_GET_LIFETIME)
    return url


def _download_response(call: QueueCall, artifact: dict[str, Any]) -> Response:
    kind = artifact["storageType"]
    headers = {STORAGE_HEADER: kind}
    if kind == "error":
        details = artifact["details"]
        return json_response({"reason": details["reason"], "message": details["message"]}, 424, headers)
    if kind == "object":
        url = simple_url(call.context.links, _object_of(call, artifact))
    elif kind == "s3":
        url = _s3_url(call, artifact)
    else:
        url = artifact["details"]["url"]
    body = {"storageType": kind, "url": url}
    if call.context.validate_output:
        problems = load_schemas().errors(schema_uri("queue", "get-artifact-response"), body)
        if problems:
            raise RuntimeError(f"{call.endpoint.name} produced invalid output: {problems}")
    return json_response(body, 303, {**headers, "Location": url})


def _content(call: QueueCall, artifact: dict[str, Any]) -> dict[str, Any]:
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


@endpoints.endpoint(
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
def create_artifact(call: QueueCall) -> dict[str, Any]:
    """Create an artifact of a running run; repeating the same request is harmless.

    ``object`` answers with credentials to upload the data to the object
    service (then call finishArtifact); ``s3`` with a URL to PUT the data to.
    """
    task_id, run_id, name = call.params["taskId"], int(call.params["runId"]), call.params["name"]
    now = utcnow()
    task, artifact = call.context.artifacts.create_artifact(task_id, run_id, name, call.body, now)
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
        url, expires = call.context.links.upload_url(
            {"b": s3_blob_key(task_id, run_id, name)},
            artifact["contentType"],
            S3_PUT_LIFETIME,
        )
        return {"storageType": kind, "putUrl": url, "expires": iso(expires), "contentType": artifact["contentType"]}
    return {"storageType": kind}


@endpoints.endpoint(
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
def finish_artifact(call: QueueCall) -> None:
    """Mark an object artifact present once its data is uploaded; only object artifacts are finished."""
    call.context.artifacts.finish_artifact(
        call.params["taskId"], int(call.params["runId"]), call.params["name"], call.body["uploadId"]
    )


# fetching


@endpoints.endpoint(
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
def get_artifact(call: QueueCall) -> Response:
    """Redirect (303) to an artifact's data; error artifacts answer 424 with their reason."""
    artifact = _follow_links(call, call.params["taskId"], int(call.params["runId"]), call.params["name"])
    return _download_response(call, artifact)


@endpoints.endpoint(
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
def get_latest_artifact(call: QueueCall) -> Response:
    """getArtifact, from the latest run of the task."""
    task_id, name = call.params["taskId"], call.params["name"]
    _authorize_names(call, [name])
    artifact = _follow_links(call, task_id, _latest_run_id(call, task_id), name)
    return _download_response(call, artifact)


@endpoints.endpoint(
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
def artifact_content(call: QueueCall) -> dict[str, Any]:
    """How to get an artifact's data (object credentials, a URL, or the error), following links."""
    artifact = _follow_links(call, call.params["taskId"], int(call.params["runId"]), call.params["name"])
    return _content(call, artifact)


@endpoints.endpoint(
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
def latest_artifact_content(call: QueueCall) -> dict[str, Any]:
    """artifact, from the latest run of the task."""
    task_id, name = call.params["taskId"], call.params["name"]
    _authorize_names(call, [name])
    artifact = _follow_links(call, task_id, _latest_run_id(call, task_id), name)
    return _content(call, artifact)


# listing


def _artifact_page(call: QueueCall, task_id: str, run_id: int) -> dict[str, Any]:
    limit, after = page.bounds(call)
    rows, more = page.cut(call.context.storage.artifacts(task_id, run_id, after, limit + 1), limit, lambda r: r["name"])
    return {"artifacts": [public_view(r) for r in rows], **more}


@endpoints.endpoint(
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
def list_artifacts(call: QueueCall) -> dict[str, Any]:
    """The artifacts of a run, by name, a page at a time (at most 1000)."""
    task_id, run_id = call.params["taskId"], int(call.params["runId"])
    if run_id > _latest_run_id(call, task_id):
        raise ResourceNotFound(f"Task {task_id} has no run with runId {run_id}")
    return _artifact_page(call, task_id, run_id)


@endpoints.endpoint(
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
def list_latest_artifacts(call: QueueCall) -> dict[str, Any]:
    """listArtifacts, for the latest run of the task."""
    task_id = call.params["taskId"]
    return _artifact_page(call, task_id, _latest_run_id(call, task_id))


def _info(call: QueueCall, task_id: str, run_id: int, name: str) -> dict[str, Any]:
    artifact = call.context.storage.artifact(task_id, run_id, name)
    if artifact is None or not artifact["present"]:
        raise ResourceNotFound("Artifact not found")
    return public_view(artifact)


@endpoints.endpoint(
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
def artifact_info(call: QueueCall) -> dict[str, Any]:
    """What listArtifacts says of one artifact; links are not followed, no data is reached."""
    return _info(call, call.params["taskId"], int(call.params["runId"]), call.params["name"])


@endpoints.endpoint(
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
def latest_artifact_info(call: QueueCall) -> dict[str, Any]:
    """artifactInfo, for the latest run of the task."""
    task_id = call.params["taskId"]
    return _info(call, task_id, _latest_run_id(call, task_id), call.params["name"])
