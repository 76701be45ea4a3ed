"""The Starlette application: one pipeline that every endpoint of every service runs through.

read body → authenticate (Hawk, bewit or anonymous) → parse and validate
input → check route arguments → authorize → handler → validate output.
Every failure on the way becomes Taskcluster's error body; a handler
exception that is not an API or domain error is logged with an incident id
and answered with a 500 that reveals nothing else.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import re
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from eventsourcing.persistence import InterfaceError, OperationalError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from cairn.api import body_limits, echo_limits, errors
from cairn.api.admission import Admission
from cairn.api.call import Call, Caller, require
from cairn.api.contexts import ApiContexts
from cairn.api.endpoints import Endpoint, Service
from cairn.api.request_threads import give_request_threads, in_request_thread, on_loop_slot, stop_request_threads
from cairn.api.routing import IndexedRouter
from cairn.api.schemas import load_schemas
from cairn.domain import errors as domain_errors
from cairn.domain.aggregate import acting_as
from cairn.domain.event_log import ConcurrentChange
from cairn.domain.timestamps import iso, utcnow

log = logging.getLogger("cairn.api")

_DOMAIN_TO_API: dict[type[Exception], type[errors.ApiError]] = {
    domain_errors.NotFound: errors.ResourceNotFound,
    domain_errors.Conflict: errors.RequestConflict,
    domain_errors.InvalidInput: errors.InputError,
    domain_errors.Expired: errors.ResourceExpired,
    domain_errors.ReplayedRequest: errors.AuthenticationFailed,
}


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body, option=orjson.OPT_UTC_Z),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def now_iso() -> str:
    return iso(utcnow())


def error_response(
    error: errors.ApiError, endpoint: str = "", params: dict[str, Any] | None = None, payload: Any = None
) -> Response:
    time = now_iso()
    message = (
        f"{echo_limits.shortened(error.message, echo_limits.MAX_MESSAGE)}\n\n---\n\n* method:     {endpoint or 'unknown'}\n"
        f"* errorCode:  {error.code}\n* statusCode: {error.status}\n* time:       {time}"
    )
    body = {
        "code": error.code,
        "message": message,
        "requestInfo": {
            "method": endpoint or "unknown",
            "params": echo_limits.echoed_params(params or {}),
            "payload": echo_limits.echoed_payload(payload),
            "time": time,
        },
    }
    headers = {"Retry-After": "1"} if error.status == 503 else None
    if error.status in (408, 413):
        # The rest of the body is not wanted: close rather than read it to the end.
        headers = {"Connection": "close"}
    return json_response(body, error.status, headers)


def _signed(request: Request) -> bool:
    return "authorization" in request.headers or "bewit" in request.query_params


@dataclass
class _Attempt:
    """What an error response reports of the request: its route arguments and parsed body."""

    params: dict[str, str]
    payload: Any = None


class EndpointRunner:
    """Runs one declared endpoint for a Starlette request."""

    def __init__(self, service: Service, endpoint: Endpoint):
        self.service = service
        self.endpoint = endpoint
        self.input_uri = service.schema_uri(endpoint.input)
        self.output_uri = service.schema_uri(endpoint.output)
        self.param_patterns = {k: re.compile(v) for k, v in endpoint.params.items()}
        self.is_async = inspect.iscoroutinefunction(endpoint.handler)
        # Scope parameters known only after loading an entity: the handler authorizes.
        self.auth_before = not endpoint.deferred_auth

    async def handle(self, request: Request) -> Response:
        # A sync handler runs with authentication and input checks in one
        # worker-thread call: a hop to the thread pool costs more than Hawk.
        # A short one runs here on the event loop, in a greenlet whose
        # database waits are the loop's, where the settings say so
        # (``request_threads.py``).
        attempt = _Attempt(dict(request.path_params))
        try:
            contexts: ApiContexts = request.app.state.contexts
            # An unsigned request's body is read, parsed and checked before anything
            # is known of its sender: it gets a smaller bound.
            signed = _signed(request)
            limit = contexts.max_body_bytes if signed else min(contexts.max_body_bytes, contexts.unsigned_body_bytes)
            raw = await self._read_body(request, limit, signed)
            if not self.is_async:
                if self.endpoint.short and contexts.short_work_on_loop:
                    call, outcome = await on_loop_slot(request, self._run_sync, attempt, request, raw, contexts)
                else:
                    call, outcome = await in_request_thread(request, self._run_sync, attempt, request, raw, contexts)
                if not inspect.iscoroutine(outcome):
                    return outcome
                # A handler that has to wait (claimWork's long poll) hands back
                # its wait as a coroutine, to be run here on the event loop.
                with acting_as(call.caller.client_id):
                    result = await outcome
                return self._respond(call, result, contexts)
            if self.endpoint.scopes is None and not self.endpoint.deferred_auth and not signed:
                caller = Caller("anonymous", [], "none")  # nothing to check: no hop to a request thread
            else:
                caller = await in_request_thread(request, self._caller, request, raw, contexts)
            call = self._prepare(attempt, request, raw, caller, contexts)
            with acting_as(caller.client_id):
                result = await self.endpoint.handler(call)
            return self._respond(call, result, contexts)
        except Exception as e:  # every failure becomes Taskcluster's error body
            return self._failure(e, attempt)

    def _run_sync(self, attempt: _Attempt, request: Request, raw: bytes, contexts: ApiContexts) -> tuple[Call, Any]:
        if self.endpoint.nonce_in_command:
            with contexts.authentication.deferring_nonce():
                return self._run_sync_here(attempt, request, raw, contexts)
        return self._run_sync_here(attempt, request, raw, contexts)

    def _run_sync_here(
        self, attempt: _Attempt, request: Request, raw: bytes, contexts: ApiContexts
    ) -> tuple[Call, Any]:
        call = self._prepare(attempt, request, raw, self._caller(request, raw, contexts), contexts)
        with acting_as(call.caller.client_id):
            result = self.endpoint.handler(call)
        if inspect.iscoroutine(result):
            return call, result
        return call, self._respond(call, result, contexts)

    def _caller(self, request: Request, raw: bytes, contexts: ApiContexts) -> Caller:
        if self.endpoint.own_authentication:
            return Caller("anonymous", [], "none")
        return contexts.authentication.caller(request, raw)

    def _prepare(
        self, attempt: _Attempt, request: Request, raw: bytes, caller: Caller, contexts: ApiContexts
    ) -> Call:
        attempt.payload = self._parse_body(raw)
        self._check_params(attempt.params)
        query = dict(request.query_params)
        query.pop("bewit", None)
        context = contexts.of(self.service.name)
        call = Call(
            self.endpoint, request, attempt.params, query, attempt.payload, caller, context,
            uptime=contexts.uptime, health=contexts.health, raw=raw,
        )
        if self.auth_before:
            call.authorize()
        return call

    def _failure(self, error: Exception, attempt: _Attempt) -> Response:
        name, params, payload = self.endpoint.name, attempt.params, attempt.payload
        if isinstance(error, ClientDisconnect):
            # The client hung up (or was too slow, see cairn.http_protocol): nobody reads this answer.
            log.info("client left during %s before its request was read", name)
            return error_response(errors.RequestTimeout("The client left before sending its whole request."), name)
        if isinstance(error, errors.ApiError):
            return error_response(error, name, params, payload)
        if isinstance(error, domain_errors.DomainError):
            api_error = _DOMAIN_TO_API.get(type(error), errors.InputError)
            return error_response(api_error(error.message), name, params, payload)
        if isinstance(error, ConcurrentChange):
            return error_response(errors.RequestConflict(str(error) or None), name, params, payload)
        if isinstance(error, (OperationalError, InterfaceError)):
            log.warning("database unavailable during %s", name, exc_info=error)
            return error_response(errors.ServiceUnavailable(), name, params, payload)
        incident = uuid.uuid4().hex
        log.error("incident %s in %s", incident, name, exc_info=error)
        return error_response(
            errors.InternalServerError(f"Internal server error; incident id {incident}."), name, params, payload
        )

    async def _read_body(self, request: Request, limit: int, signed: bool = True) -> bytes:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise errors.InputTooLarge(f"The request body exceeds {limit} bytes{'' if signed else ' (unsigned)'}.")
        chunks = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise errors.InputTooLarge(f"The request body exceeds {limit} bytes{'' if signed else ' (unsigned)'}.")
            chunks.append(chunk)
        return b"".join(chunks)

    def _parse_body(self, raw: bytes) -> Any:
        if not self.endpoint.input and not self.endpoint.accepts_body:
            return None
        if not raw.strip():
            if self.endpoint.input:
                raise errors.MalformedPayload("This endpoint requires a JSON request body.")
            return None
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as e:
            raise errors.MalformedPayload(f"The request body is not valid JSON: {e}") from None
        if body_limits.nested_deeper_than(raw, body):
            raise errors.MalformedPayload(f"The request body nests deeper than {body_limits.MAX_DEPTH} levels.")
        if body_limits.list_longer_than(raw, body):
            raise errors.InputTooLarge(f"A list in the request body holds more than {body_limits.MAX_ITEMS} items.")
        if body_limits.holds_nul(raw, body):
            raise errors.InputValidationError("The request body holds a NUL character (\\u0000), which Cairn refuses.")
        if self.input_uri:
            problems = load_schemas().errors(self.input_uri, body, len(raw))
            if problems:
                raise errors.InputValidationError(
                    f"The request body does not match the schema {self.input_uri}#:\n{problems}"
                )
        return body

    def _check_params(self, params: dict[str, str]) -> None:
        for name, pattern in self.param_patterns.items():
            value = params.get(name)
            if value is not None and not pattern.fullmatch(value):
                raise errors.InvalidRequestArguments(
                    f"URL parameter {name}={value!r} must match {pattern.pattern}"
                )

    def _respond(self, call: Call, result: Any, contexts: ApiContexts) -> Response:
        if not call.authorized:
            raise RuntimeError(f"{self.endpoint.name} did not authorize the call")
        if isinstance(result, Response):
            return result
        if result is None:
            return Response(status_code=204) if not self.output_uri else json_response({})
        if self.output_uri and contexts.validate_output:
            problems = load_schemas().errors(self.output_uri, result)
            if problems:
                raise RuntimeError(f"{self.endpoint.name} produced invalid output: {problems}")
        return json_response(result)


def service_routes(service: Service) -> list[BaseRoute]:
    routes: list[BaseRoute] = []
    for endpoint in service.endpoints:
        runner = EndpointRunner(service, endpoint)
        path = endpoint.starlette_path()
        routes.append(Route(path, runner.handle, methods=[endpoint.method]))
        if path.endswith("/") and path != "/":
            # Taskcluster's clients strip the trailing slash (`/clients/` → `/clients`).
            routes.append(Route(path.rstrip("/"), runner.handle, methods=[endpoint.method]))
    return routes


async def not_found(request: Request, exc: Exception) -> Response:
    status = getattr(exc, "status_code", 404)
    if status == 405:
        error: errors.ApiError = errors.ResourceNotFound(
            f"No endpoint for {request.method} {request.url.path}."
        )
    else:
        error = errors.ResourceNotFound(f"No such route: {request.url.path}")
    return error_response(error)


def build_app(
    runtime: Any, contexts: ApiContexts, services: Sequence[Service], extra_routes: Sequence[BaseRoute] = ()
) -> Starlette:
    """The app serving ``services``; ``runtime`` is started and stopped with it."""
    # Starlette tries routes in order, a regular expression each: the API's
    # mounts come before the pages and files, behind only the extra routes
    # that lie under /api/ (some under a mount's path, which must win).
    under_api = [r for r in extra_routes if getattr(r, "path", "").startswith("/api/")]
    routes: list[BaseRoute] = list(under_api)
    for service in services:
        routes.append(Mount(service.base_path, app=IndexedRouter(service_routes(service))))
    routes += [r for r in extra_routes if r not in under_api]
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            stop_request_threads(app)
            await runtime.stop()

    settings = runtime.settings
    app = Starlette(
        exception_handlers={404: not_found, 405: not_found},
        middleware=[Middleware(Admission, max_requests=settings.max_requests, max_long_polls=settings.max_long_polls)],
    )
    # The routes, tried by the request's first path segment (``routing.py``): the router is
    # Starlette's own but for that, and the first request builds the middleware around it.
    app.router = IndexedRouter(routes, lifespan=lifespan)
    app.state.contexts = contexts
    give_request_threads(app, runtime.settings.request_threads)
    return app


__all__ = ["build_app", "json_response", "error_response", "require", "Caller"]
