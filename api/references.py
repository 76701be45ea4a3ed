"""Documents that describe the API, generated from the endpoint declarations.

- ``/references/manifest.json`` and ``/references/<service>/v1/api.json``:
  Taskcluster's manifest and API reference formats, which client
  generators and the docs site read;
- ``/schemas/<service>/v1/<name>.json``: every JSON Schema in ``schemas/``;
- ``/api/openapi.json``: one OpenAPI 3.0 document for every service.

All are public, built on first request and then served from memory.

OpenAPI 3.0 schema objects are a dialect of JSON Schema, not draft-07, so the
schemas are translated rather than linked: each schema an operation names,
and each fragment one of them ``$ref``s, becomes an entry of
``components/schemas``; ``$ref`` is rewritten to point there; keywords the
dialect lacks are mapped (``const`` to a one-value ``enum``, a ``null`` type
to ``nullable``) or dropped (``$id``, ``definitions``, ...), which only ever
makes a schema more permissive.
"""

from __future__ import annotations

import hashlib
import logging
import re
import uuid
from collections.abc import Callable, Sequence
from importlib.metadata import version
from typing import Any
from urllib.parse import unquote, urljoin

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from cairn.api import errors
from cairn.api.app import error_response
from cairn.api.endpoints import Endpoint, Service
from cairn.api.schemas import SchemaSet, load_schemas

API_REFERENCE_SCHEMA = "/schemas/common/api-reference-v0.json#"
MANIFEST_SCHEMA = "/schemas/common/manifest-v3.json#"
ERROR_SCHEMA = "/schemas/common/v1/error.json#"

log = logging.getLogger("cairn.api")


def api_entry(endpoint: Endpoint) -> dict[str, Any]:
    """One endpoint as an entry of Taskcluster's API reference."""
    entry: dict[str, Any] = {
        "type": "function",
        "method": endpoint.method.lower(),
        "route": endpoint.route,
        "args": endpoint.args,
        "query": list(endpoint.query),
        "name": endpoint.name,
        "stability": endpoint.stability,
        "title": endpoint.title,
        "description": endpoint.description,
        "category": endpoint.category,
    }
    if endpoint.scopes is not None:
        entry["scopes"] = orjson.loads(orjson.dumps(endpoint.scopes))
    if endpoint.input:
        entry["input"] = f"v1/{endpoint.input}.json#"
    if endpoint.output:
        entry["output"] = f"v1/{endpoint.output}.json#"
    return entry


def api_reference(service: Service) -> dict[str, Any]:
    return {
        "$schema": API_REFERENCE_SCHEMA,
        "apiVersion": "v1",
        "serviceName": service.name,
        "title": service.title,
        "description": service.description,
        "entries": [api_entry(endpoint) for endpoint in service.endpoints],
    }


def manifest(services: Sequence[Service]) -> dict[str, Any]:
    return {
        "$schema": MANIFEST_SCHEMA,
        "references": sorted(f"/references/{s.name}/v1/api.json" for s in services),
    }


def openapi_document(services: Sequence[Service], schemas: SchemaSet) -> dict[str, Any]:
    components = _ComponentSchemas(schemas)
    by_status: dict[int, list[type[errors.ApiError]]] = {}
    for cls in errors.ERROR_CODES.values():
        by_status.setdefault(cls.status, []).append(cls)
    error = components.ref(ERROR_SCHEMA)
    responses = {
        f"Status{status}": {
            "description": "\n".join(f"`{c.__name__}`: {c.__doc__}" for c in classes),
            "content": _json(
                {"allOf": [error, {"properties": {"code": {"enum": [c.__name__ for c in classes]}}}]}
            ),
        }
        for status, classes in sorted(by_status.items())
    }
    paths: dict[str, dict[str, Any]] = {}
    for service in services:
        for endpoint in service.endpoints:
            path = service.base_path + endpoint.openapi_path()
            operation = _operation(service, endpoint, components)
            operation["responses"].update(
                (str(status), {"$ref": f"#/components/responses/Status{status}"})
                for status in sorted(by_status)
            )
            paths.setdefault(path, {})[endpoint.method.lower()] = operation
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Cairn",
            "version": version("cairn"),
            "description": "Taskcluster's REST API, as served by Cairn. Errors are "
            "`{code, message, requestInfo}` bodies; requests are signed with Hawk.",
        },
        "tags": [{"name": s.name, "description": s.description} for s in services],
        "paths": paths,
        "components": {
            "schemas": components.schemas,
            "responses": responses,
            "securitySchemes": SECURITY_SCHEMES,
        },
    }


SECURITY_SCHEMES = {
    "hawk": {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": "A Hawk header (`Hawk id=\"<clientId>\", ts=..., nonce=..., mac=...`) "
        "signed with the client's `accessToken`. Its `ext` may carry a `certificate` for "
        "temporary credentials and `authorizedScopes` to restrict the request's scopes. "
        "Requests without credentials get the scopes of the `anonymous` role.",
    },
    "bewit": {
        "type": "apiKey",
        "in": "query",
        "name": "bewit",
        "description": "A Hawk bewit: a pre-signed GET URL with an expiry.",
    },
}


def _operation(service: Service, endpoint: Endpoint, components: _ComponentSchemas) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": f"{service.name}.{endpoint.name}",
        "summary": endpoint.title,
        "description": endpoint.description,
        "tags": [service.name],
        "parameters": [_path_parameter(endpoint, name) for name in endpoint.args]
        + [_query_parameter(name) for name in endpoint.query],
        "x-category": endpoint.category,
        "x-stability": endpoint.stability,
    }
    if endpoint.stability == "deprecated":
        operation["deprecated"] = True
    if endpoint.scopes is not None:
        operation["x-scopes"] = orjson.loads(orjson.dumps(endpoint.scopes))
        operation["security"] = [{"hawk": []}] + ([{"bewit": []}] if endpoint.method == "GET" else [])
    else:
        operation["security"] = [{}, {"hawk": []}]
    if endpoint.input:
        schema = components.ref(service.schema_uri(endpoint.input) + "#")
        operation["requestBody"] = {"required": True, "content": _json(schema)}
    elif endpoint.accepts_body:
        operation["requestBody"] = {"required": False, "content": _json({})}
    if endpoint.responses is not None:
        operation["responses"] = endpoint.responses
    elif endpoint.output:
        schema = components.ref(service.schema_uri(endpoint.output) + "#")
        operation["responses"] = {"200": {"description": "Success", "content": _json(schema)}}
    else:
        operation["responses"] = {
            "200": {"description": "Success", "content": _json({})},
            "204": {"description": "Success, without a body"},
        }
    return operation


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


#: Query arguments that are not just any string (see pagination.py and listWorkers).
_QUERY_SCHEMAS: dict[str, dict[str, Any]] = {
    "limit": {"type": "integer", "minimum": 1},
    "prefix": {"type": "string", "pattern": "^[A-Za-z0-9!@/:.+|_-]*$"},  # of a clientId
    "quarantined": {"type": "string", "enum": ["true", "false"]},
    # the github service's filters of builds
    "organization": {"type": "string", "pattern": "^[a-zA-Z0-9_%-]*$"},
    "repository": {"type": "string", "pattern": "^[a-zA-Z0-9_%-]*$"},
    "pullRequest": {"type": "string", "pattern": "^[0-9]{0,9}$"},  # stored as a 32-bit integer
    "since": {"type": "string", "format": "date-time"},  # of purgeRequests
}

#: An example of each route parameter that may contain `/`, showing that it may.
_SLASHED_EXAMPLES = {
    "clientId": "project/ci",
    "roleId": "repo:github.com/org/repo:*",
    "taskQueueId": "proj-builds/linux",
    "workerPoolId": "proj-builds/linux",
    "name": "public/logs/live.log",
}


def _query_parameter(name: str) -> dict[str, Any]:
    schema = _QUERY_SCHEMAS.get(name, {"type": "string"})
    return {"name": name, "in": "query", "required": False, "schema": schema}


def _path_parameter(endpoint: Endpoint, name: str) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string", "minLength": 1}
    if name in endpoint.params:
        schema["pattern"] = f"^(?:{endpoint.params[name]})$"
    parameter = {"name": name, "in": "path", "required": True, "schema": schema}
    if name in endpoint.greedy:
        parameter["description"] = "May contain `/`."
        if name in _SLASHED_EXAMPLES:
            parameter["example"] = _SLASHED_EXAMPLES[name]
    return parameter


# Keywords whose meaning is the same in draft-07 and in OpenAPI 3.0 schema objects.
_SAME = {
    "title", "description", "default", "format", "enum", "pattern", "multipleOf",
    "minimum", "maximum", "minLength", "maxLength", "minItems", "maxItems", "uniqueItems",
    "minProperties", "maxProperties", "readOnly", "writeOnly",
}
_COMPONENT_NAME = re.compile(r"[^A-Za-z0-9._-]")


class _ComponentSchemas:
    """Draft-07 documents translated into ``components/schemas``, as they are referenced."""

    def __init__(self, schemas: SchemaSet):
        self.documents = schemas.documents
        self.schemas: dict[str, Any] = {}

    def ref(self, uri: str) -> dict[str, str]:
        """A ``$ref`` to the component for ``uri`` (``/schemas/...json#/pointer``)."""
        document, _, pointer = uri.partition("#")
        name = document.removeprefix("/schemas/").removesuffix(".json")
        if pointer.strip("/"):
            name += "/" + unquote(pointer).strip("/")
        name = _COMPONENT_NAME.sub("_", name.replace("/", "."))
        if name not in self.schemas:
            self.schemas[name] = {}  # claimed before converting, so that cycles terminate
            target = _resolve_pointer(self.documents[document], pointer)
            self.schemas[name] = self._convert(target, document)
        return {"$ref": f"#/components/schemas/{name}"}

    def _convert(self, node: Any, base: str) -> Any:
        if isinstance(node, bool):
            return {} if node else {"not": {}}
        if not isinstance(node, dict):
            return {}
        if isinstance(node.get("$id"), str):
            base = urljoin(base, node["$id"]).partition("#")[0]
        if isinstance(node.get("$ref"), str):
            target = self.ref(urljoin(base, node["$ref"]))
            rest = {k: v for k, v in node.items() if k in _SAME or k == "type"}
            return {**self._convert(rest, base), "allOf": [target]} if rest else target
        out: dict[str, Any] = {}

        def convert(schema: Any) -> Any:
            return self._convert(schema, base)

        for key, value in node.items():
            if key in _SAME:
                out[key] = value
            elif key == "type":
                out.update(_type(value))
            elif key == "const":
                out["enum"] = [value]
            elif key == "examples" and isinstance(value, list) and value:
                out["example"] = value[0]
            elif key == "required" and value:
                out["required"] = value
            elif key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
                out[key.replace("exclusiveM", "m")] = value
                out[key] = True
            elif key == "properties":
                out["properties"] = {name: convert(schema) for name, schema in value.items()}
            elif key in ("allOf", "anyOf", "oneOf"):
                out[key] = [convert(schema) for schema in value]
            elif key == "items":
                tuple_items = isinstance(value, list)
                out["items"] = {"anyOf": [convert(s) for s in value]} if tuple_items else convert(value)
            elif key == "additionalProperties":
                out[key] = value if isinstance(value, bool) else convert(value)
            elif key == "not":
                out[key] = convert(value)
        if out.get("type") == "array" and "items" not in out:
            out["items"] = {}
        return out


def _type(value: Any) -> dict[str, Any]:
    types = [value] if isinstance(value, str) else list(value)
    nullable = "null" in types
    types = [t for t in types if t != "null"]
    if not types:
        return {"nullable": True, "enum": [None]}
    if len(types) == 1:
        found: dict[str, Any] = {"type": types[0]}
    else:
        found = {"anyOf": [{"type": t} for t in types]}
    return {**found, "nullable": True} if nullable else found


def _resolve_pointer(document: Any, pointer: str) -> Any:
    node = document
    for token in filter(None, unquote(pointer).split("/")):
        token = token.replace("~1", "/").replace("~0", "~")
        node = node[int(token)] if isinstance(node, list) else node[token]
    return node


class ApiDocuments:
    """The routes that serve the documents, each encoded once and kept in memory."""

    def __init__(self, services: Sequence[Service]):
        self.services = list(services)
        self._encoded: dict[str, tuple[bytes, str]] = {}

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/references/manifest.json", self.manifest),
            Route("/references/{service}/v1/api.json", self.api_reference),
            Route("/schemas/{path:path}", self.schema),
            Route("/api/openapi.json", self.openapi),
        ]

    async def manifest(self, request: Request) -> Response:
        return self._serve(request, "manifest", lambda: manifest(self.services))

    async def api_reference(self, request: Request) -> Response:
        name = request.path_params["service"]
        service = next((s for s in self.services if s.name == name), None)
        if service is None:
            return error_response(errors.ResourceNotFound(f"No API reference for service {name!r}."))
        return self._serve(request, f"api:{name}", lambda: api_reference(service))

    async def schema(self, request: Request) -> Response:
        uri = "/schemas/" + request.path_params["path"]
        documents = load_schemas().documents
        if uri not in documents:
            return error_response(errors.ResourceNotFound(f"No schema {uri}."))
        return self._serve(request, f"schema:{uri}", lambda: documents[uri])

    async def openapi(self, request: Request) -> Response:
        return self._serve(request, "openapi", lambda: openapi_document(self.services, load_schemas()))

    def _serve(self, request: Request, key: str, build: Callable[[], Any]) -> Response:
        if key not in self._encoded:
            try:
                body = orjson.dumps(build(), option=orjson.OPT_INDENT_2)
            except Exception:
                incident = uuid.uuid4().hex
                log.exception("incident %s building %s", incident, request.url.path)
                error = errors.InternalServerError(f"Internal server error; incident id {incident}.")
                return error_response(error)
            self._encoded[key] = (body, '"%s"' % hashlib.sha256(body).hexdigest()[:32])
        body, etag = self._encoded[key]
        headers = {"ETag": etag, "Access-Control-Allow-Origin": "*"}
        if etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        return Response(body, media_type="application/json", headers=headers)


def reference_routes(services: Sequence[Service]) -> list[BaseRoute]:
    return ApiDocuments(services).routes()
