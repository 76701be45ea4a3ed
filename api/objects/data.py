"""The data routes behind the signed URLs: PUT an upload's bytes, GET a blob's.

They sit outside the Hawk pipeline (the signature in the URL is the
authorization) but answer errors in Taskcluster's format all the same.

A PUT streams into a new blob while measuring its size and hashes, and the
object records that blob only if the upload is still open under the
uploadId the URL was made for. A GET streams the blob as stored; when the
URL was made for a client that will not check hashes itself (the ``simple``
method, and artifact redirects), the server checks them as it sends, and
cuts the response short rather than deliver data that does not match.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Iterator
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from cairn.api import errors
from cairn.api.app import error_response
from cairn.api.objects.context import ObjectsContext
from cairn.api.signed_urls import PATH, InvalidToken
from cairn.domain import errors as domain_errors
from cairn.domain.aggregate import acting_as
from cairn.projections.objects.blob_store import BlobMissing, new_blob_key

log = logging.getLogger("cairn.object_data")

_DOMAIN_TO_API = {domain_errors.NotFound: errors.ResourceNotFound, domain_errors.Conflict: errors.RequestConflict}


class CorruptBlob(Exception):
    """A blob no longer matches the hashes recorded when it was uploaded."""


def _media_type(value: str | None) -> str:
    return (value or "").split(";", 1)[0].strip().lower()


async def put_data(request: Request) -> Response:
    ctx: ObjectsContext = request.app.state.contexts.of("object")
    name = "objectData.put"
    try:
        claims = ctx.links.claims(request.path_params["token"], "put")
        if _media_type(request.headers.get("content-type")) != _media_type(claims["ct"]):
            raise errors.InputError(f"The upload must be sent with Content-Type {claims['ct']}")
        expected = claims.get("cl")
        declared = request.headers.get("content-length")
        if expected is not None and declared is not None and declared != str(expected):
            raise errors.InputError(f"The upload must be sent with Content-Length {expected}")
        blob = claims.get("b") or new_blob_key("objects")
        size, measured = await _receive(request, ctx.blobs.writer(blob), expected)
        if "n" in claims:
            with acting_as(claims.get("a") or "anonymous"):
                await run_in_threadpool(
                    ctx.service.receive_data, claims["n"], claims["u"], blob, claims["ct"], size, measured
                )
        return Response(status_code=200)
    except InvalidToken:
        return error_response(errors.AuthenticationFailed("This URL is not valid, or it has expired."), name)
    except ClientDisconnect:
        log.info("an upload was abandoned before all its data arrived")
        return Response(status_code=400)
    except errors.ApiError as e:
        return error_response(e, name)
    except domain_errors.DomainError as e:
        return error_response(_DOMAIN_TO_API.get(type(e), errors.InputError)(e.message), name)
    except Exception:
        return _incident(name)


async def _receive(request: Request, writer: Any, expected: int | None) -> tuple[int, dict[str, str]]:
    sha256, sha512 = hashlib.sha256(), hashlib.sha512()
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if expected is not None and size > expected:
                raise errors.InputError(f"The upload is longer than the {expected} bytes announced")
            sha256.update(chunk)
            sha512.update(chunk)
            await run_in_threadpool(writer.write, chunk)
        if expected is not None and size != expected:
            raise errors.InputError(f"The upload has {size} bytes, not the {expected} announced")
        await run_in_threadpool(writer.commit)
    except BaseException:
        await run_in_threadpool(writer.discard)
        raise
    return size, {"sha256": sha256.hexdigest(), "sha512": sha512.hexdigest()}


async def get_data(request: Request) -> Response:
    ctx: ObjectsContext = request.app.state.contexts.of("object")
    name = "objectData.get"
    try:
        claims = ctx.links.claims(request.path_params["token"], "get")
        store = ctx.blobs
        blob = claims["b"]
        size = await run_in_threadpool(store.size, blob)
        chunks = store.chunks(blob)
        if "h" in claims:
            size = claims["sz"]
            chunks = _verified(chunks, blob, claims["sz"], claims["h"])
        # The stored content type exactly: Starlette would add a charset to text/*.
        return StreamingResponse(
            chunks,
            headers={
                "Content-Type": claims["ct"],
                "Content-Length": str(size),
                "Cache-Control": "private, no-transform",
            },
        )
    except InvalidToken:
        return error_response(errors.AuthenticationFailed("This URL is not valid, or it has expired."), name)
    except BlobMissing:
        return error_response(errors.ResourceNotFound("The data no longer exists."), name)
    except Exception:
        return _incident(name)


def _verified(chunks: Iterator[bytes], blob: str, size: int, sha256: str) -> Iterator[bytes]:
    """The chunks, holding back the last one until the whole blob is checked."""
    digest = hashlib.sha256()
    seen = 0
    held: bytes | None = None
    for chunk in chunks:
        if held is not None:
            yield held
        digest.update(chunk)
        seen += len(chunk)
        held = chunk
    if seen != size or digest.hexdigest() != sha256:
        log.error("blob %s does not match the hashes recorded at upload; download cut short", blob)
        raise CorruptBlob(blob)
    if held is not None:
        yield held


def _incident(name: str) -> Response:
    incident = uuid.uuid4().hex
    log.exception("incident %s in %s", incident, name)
    return error_response(errors.InternalServerError(f"Internal server error; incident id {incident}."), name)


def object_data_routes() -> list[Route]:
    return [
        Route(PATH + "{token}", put_data, methods=["PUT"]),
        Route(PATH + "{token}", get_data, methods=["GET"]),
    ]
