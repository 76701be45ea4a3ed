"""The object service: uploads and downloads of immutable, expiring blobs of data.

Uploads negotiate a method: ``dataInline`` (small data inside the
createUpload request) or ``putUrl`` (a signed URL on this server to PUT the
data to). Downloads offer ``getUrl`` (a short-lived signed URL plus the
hashes the client must check) and ``simple`` (a URL only; the server checks
the hashes as it sends).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from starlette.responses import Response

from cairn.api.call import Call
from cairn.api.endpoints import Service
from cairn.api.errors import NoMatchingMethod, ResourceNotFound
from cairn.api.objects.context import ObjectsContext
from cairn.api.signed_urls import DataLinks
from cairn.domain.timestamps import iso, normalized, utcnow

NAME = r"[\x20-\x7e]+"
PARAMS = {"name": NAME}
PUT_URL_LIFETIME = timedelta(minutes=45)
GET_URL_LIFETIME = timedelta(seconds=60)
GET_URL_GRACE = timedelta(seconds=60)
SIMPLE_URL_LIFETIME = timedelta(minutes=30)
#: Download methods, the preferred first.
DOWNLOAD_METHODS = ("getUrl", "simple")

objects = Service(
    name="object",
    title="Object Service",
    description=(
        "The object service stores large blobs of data for a limited time. Objects are "
        "uploaded once, are immutable from then on, and are downloaded with the hashes "
        "recorded at upload so that clients can check what they received. The data moves "
        "through signed, time-limited URLs; only its description is recorded in Cairn's log."
    ),
)
ObjectsCall = Call[ObjectsContext]



@objects.endpoint(
    "createUpload",
    "PUT",
    "/upload/<name>",
    title="Begin upload of a new object",
    category="Upload",
    scopes="object:upload:<projectId>:<name>",
    input="create-upload-request",
    output="create-upload-response",
    params=PARAMS,
    greedy=("name",),
)
def create_upload(call: ObjectsCall) -> dict[str, Any]:
    """Start an upload, or repeat it to renew a URL; the first call fixes uploadId, projectId and expires.

    ``dataInline`` is chosen over ``putUrl`` when both are proposed.
    """
    body = call.body
    name = call.params["name"]
    proposed = body["proposedUploadMethods"]
    inline = proposed.get("dataInline")
    call.context.service.create_upload(
        name, body["projectId"], body["uploadId"], body["expires"], body.get("hashes", {}), utcnow(),
        inline=inline,
    )
    method: dict[str, Any] = {}
    if inline is not None:
        method["dataInline"] = True
    elif "putUrl" in proposed:
        content_type, length = proposed["putUrl"]["contentType"], proposed["putUrl"]["contentLength"]
        target = {"n": name, "u": body["uploadId"], "a": call.client_id}
        url, expires = call.context.links.upload_url(target, content_type, PUT_URL_LIFETIME, length)
        method["putUrl"] = {
            "url": url,
            "expires": iso(expires),
            "headers": {"Content-Type": content_type, "Content-Length": str(length)},
        }
    return {
        "projectId": body["projectId"],
        "uploadId": body["uploadId"],
        "expires": normalized(body["expires"]),
        "uploadMethod": method,
    }


@objects.endpoint(
    "finishUpload",
    "POST",
    "/finish-upload/<name>",
    title="Mark an upload as complete.",
    category="Upload",
    scopes="object:upload:<projectId>:<name>",
    input="finish-upload-request",
    params=PARAMS,
    greedy=("name",),
)
def finish_upload(call: ObjectsCall) -> dict[str, Any]:
    """Finish an upload: the uploaded data must match every hash declared for it.

    The object is immutable from then on; repeating the call is harmless.
    """
    body = call.body
    call.context.service.finish_upload(
        call.params["name"], body["projectId"], body["uploadId"], body.get("hashes", {})
    )
    return {}


def finished_object(call: ObjectsCall, name: str) -> dict[str, Any]:
    found = call.context.storage.object(name)
    if found is None or not found["finished"] or found["blobKey"] is None:
        raise ResourceNotFound(f'Object "{name}" not found')
    return found


def simple_url(links: DataLinks, found: dict[str, Any]) -> str:
    """A plain GET URL of an object's data; the server checks the data as it sends it."""
    verify = (found["contentLength"], found["hashes"]["sha256"])
    url, _ = links.download_url(found["blobKey"], found["contentType"], SIMPLE_URL_LIFETIME, verify)
    return url


@objects.endpoint(
    "startDownload",
    "PUT",
    "/start-download/<name>",
    title="Download object data",
    category="Download",
    scopes="object:download:<name>",
    input="download-object-request",
    output="download-object-response",
    params=PARAMS,
    greedy=("name",),
)
def start_download(call: ObjectsCall) -> dict[str, Any]:
    """Choose a download method among those the caller accepts (``getUrl`` first) and answer it."""
    name = call.params["name"]
    found = finished_object(call, name)
    accepted = call.body["acceptDownloadMethods"]
    method = next((m for m in DOWNLOAD_METHODS if m in accepted), None)
    if method is None:
        raise NoMatchingMethod(f"Object supports methods {', '.join(DOWNLOAD_METHODS)}")
    if method == "simple":
        return {"method": "simple", "url": simple_url(call.context.links, found)}
    url, expires = call.context.links.download_url(
        found["blobKey"], found["contentType"], GET_URL_LIFETIME + GET_URL_GRACE
    )
    return {
        "method": "getUrl",
        "url": url,
        "expires": iso(expires - GET_URL_GRACE),
        "hashes": found["hashes"],
    }


@objects.endpoint(
    "object",
    "GET",
    "/metadata/<name>",
    title="Get an object's metadata",
    category="Objects",
    scopes="object:download:<name>",
    output="get-object-response",
    params=PARAMS,
    greedy=("name",),
)
def get_object(call: ObjectsCall) -> dict[str, Any]:
    """An object's project, expiry and hashes; not its data (see startDownload)."""
    found = finished_object(call, call.params["name"])
    return {"projectId": found["projectId"], "expires": found["expires"], "hashes": found["hashes"]}


@objects.endpoint(
    "download",
    "GET",
    "/download/<name>",
    title="Get an object's data",
    category="Download",
    scopes="object:download:<name>",
    params=PARAMS,
    greedy=("name",),
)
def download(call: ObjectsCall) -> Response:
    """Redirect (303) to the object's data, for simple HTTP clients (with a bewit URL, say)."""
    url = simple_url(call.context.links, finished_object(call, call.params["name"]))
    return Response(status_code=303, headers={"Location": url})
