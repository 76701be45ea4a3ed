"""The documents that describe the API are generated from the endpoint declarations,
served publicly, and agree with Taskcluster's published contract.

- `/references/<service>/v1/api.json` and `/references/manifest.json` are in
  Taskcluster's reference formats (checked against a schema written here);
- `/schemas/...` serves every JSON Schema, and a Taskcluster-format 404 otherwise;
- `/api/openapi.json` is a valid, self-contained OpenAPI 3.0 document;
- the contract test: every declared endpoint of every service has the method,
  route, arguments, query parameters, schemas and scope expression of the
  same-named endpoint in Taskcluster's reference (`endpoints.json`), unless it
  is listed in ``CAIRN_ONLY``.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urljoin

import httpx
import pytest
from jsonschema import Draft7Validator
from openapi_spec_validator import validate as validate_openapi

from cairn.api.endpoints import Endpoint, Service
from cairn.api.schemas import load_schemas
from cairn.domain.auth.scope_templates import ScopeTemplate
from cairn.server import SERVICES
from tests.conftest import reference_dir

ERROR_SCHEMA = "/schemas/common/v1/error.json"

#: Endpoints Cairn declares that Taskcluster does not have, each with the reason.
#: The contract test fails for any other endpoint that is missing from the reference.
CAIRN_ONLY: dict[tuple[str, str], str] = {
    ("auth", "clientHistory"): "a client's event history, which Taskcluster never kept",
    ("auth", "roleHistory"): "a role's event history, which Taskcluster never kept",
    ("queue", "taskHistory"): "a task's event history, which Taskcluster never kept",
    ("queue", "taskGroupHistory"): "a task group's event history, which Taskcluster never kept",
    ("events", "ping"): "the event stream service is Cairn's own",
    ("events", "lbheartbeat"): "the event stream service is Cairn's own; it is monitored as every service is",
    ("events", "heartbeat"): "the event stream service is Cairn's own; it is monitored as every service is",
    ("events", "version"): "the event stream service is Cairn's own; it is monitored as every service is",
    ("events", "stream"): "Pulse messages as resumable server-sent events",
    ("github", "githubWebHookConsumer"): (
        "Taskcluster declares it with noPublish: GitHub calls it, clients never do, "
        "so no client's reference has it"
    ),
}

_SCOPE_TEMPLATE = {
    "anyOf": [
        {"type": "string"},
        {
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"enum": ["AllOf", "AnyOf", "if", "then", "else", "for", "in", "each"]},
        },
    ]
}

#: Taskcluster's API reference format (api-reference-v0), as this test understands it.
API_REFERENCE_FORMAT: dict[str, Any] = {
    "type": "object",
    "required": ["$schema", "apiVersion", "serviceName", "title", "description", "entries"],
    "additionalProperties": False,
    "properties": {
        "$schema": {"const": "/schemas/common/api-reference-v0.json#"},
        "apiVersion": {"type": "string", "pattern": "^v[0-9]+$"},
        "serviceName": {"type": "string", "pattern": "^[a-z][a-z0-9_-]{0,21}$"},
        "title": {"type": "string"},
        "description": {"type": "string"},
        "entries": {
            "type": "array",
            "items": {
                "type": "object",
                "required": [
                    "type", "method", "route", "args", "query", "name",
                    "stability", "title", "description", "category",
                ],
                "additionalProperties": False,
                "properties": {
                    "type": {"const": "function"},
                    "method": {"enum": ["get", "post", "put", "delete", "patch", "head"]},
                    "route": {"type": "string", "pattern": "^/"},
                    "args": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
                    "query": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
                    "name": {"type": "string", "pattern": "^[a-z][a-zA-Z0-9]*$"},
                    "stability": {"enum": ["deprecated", "experimental", "stable"]},
                    "title": {"type": "string", "minLength": 1},
                    "description": {"type": "string"},
                    "category": {"type": "string"},
                    "scopes": _SCOPE_TEMPLATE,
                    "input": {"type": "string", "pattern": r"^v1/[a-zA-Z0-9_-]+\.json#$"},
                    "output": {"type": "string", "pattern": r"^v1/[a-zA-Z0-9_-]+\.json#$"},
                },
            },
        },
    },
}

MANIFEST_FORMAT: dict[str, Any] = {
    "type": "object",
    "required": ["$schema", "references"],
    "additionalProperties": False,
    "properties": {
        "$schema": {"const": "/schemas/common/manifest-v3.json#"},
        "references": {
            "type": "array",
            "items": {"type": "string", "pattern": "^/references/[a-z-]+/v1/[a-z]+\\.json$"},
            "uniqueItems": True,
        },
    },
}


def get(server: Any, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.get(server.root_url + path, **kwargs)


def _assert_valid(document: Any, schema: dict[str, Any]) -> None:
    errors = Draft7Validator(schema).iter_errors(document)
    problems = [f"{list(e.absolute_path)}: {e.message}" for e in errors]
    assert not problems, "\n".join(problems)


def _assert_taskcluster_error(response: httpx.Response, code: str) -> None:
    body = response.json()
    assert set(body) == {"code", "message", "requestInfo"}
    assert body["code"] == code
    assert load_schemas().errors(ERROR_SCHEMA, body) is None


def _schema_uris(service: Service, endpoint: Endpoint) -> list[str]:
    return [service.schema_uri(name) for name in (endpoint.input, endpoint.output) if name]


# --- Taskcluster references -------------------------------------------------------


def test_auth_api_reference_has_the_declared_entries(server):
    from cairn.api.auth.handlers import auth

    response = get(server, "/references/auth/v1/api.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    reference = response.json()
    _assert_valid(reference, API_REFERENCE_FORMAT)
    assert reference["serviceName"] == "auth"
    assert [e["name"] for e in reference["entries"]] == [e.name for e in auth.endpoints]
    for entry, endpoint in zip(reference["entries"], auth.endpoints):
        assert entry["method"] == endpoint.method.lower()
        assert entry["route"] == endpoint.route
        assert entry["args"] == endpoint.args
        assert entry["query"] == list(endpoint.query)
        if endpoint.scopes is None:
            assert "scopes" not in entry
        else:
            assert entry["scopes"] == json.loads(json.dumps(endpoint.scopes))
            assert ScopeTemplate.is_valid(entry["scopes"])
        for key in ("input", "output"):
            if key in entry:  # relative to the service's schema location, as Taskcluster's
                assert urljoin("/schemas/auth/", entry[key]).rstrip("#") in load_schemas().documents
    ping = next(e for e in reference["entries"] if e["name"] == "ping")
    assert ping == {
        "type": "function",
        "method": "get",
        "route": "/ping",
        "args": [],
        "query": [],
        "name": "ping",
        "stability": "stable",
        "title": "Ping Server",
        "description": ping["description"],
        "category": ping["category"],
    }


def test_manifest_lists_an_api_reference_per_service(server):
    response = get(server, "/references/manifest.json")
    assert response.status_code == 200
    manifest = response.json()
    _assert_valid(manifest, MANIFEST_FORMAT)
    assert manifest["references"] == sorted(f"/references/{s.name}/v1/api.json" for s in SERVICES)
    for path in manifest["references"]:
        reference = get(server, path).json()
        _assert_valid(reference, API_REFERENCE_FORMAT)


def test_unknown_service_has_no_reference(server):
    response = get(server, "/references/no-such-service/v1/api.json")
    assert response.status_code == 404
    _assert_taskcluster_error(response, "ResourceNotFound")


def test_documents_are_public_and_cached(server):
    bogus = {"Authorization": 'Hawk id="nobody", ts="1", nonce="x", mac="AAAA"'}
    for path in ("/references/manifest.json", "/api/openapi.json", "/schemas/common/v1/error.json"):
        first = get(server, path, headers=bogus)
        assert first.status_code == 200, path
        assert first.headers["access-control-allow-origin"] == "*"
        again = get(server, path, headers={"If-None-Match": first.headers["etag"]})
        assert again.status_code == 304
        assert get(server, path).content == first.content


# --- JSON Schemas -----------------------------------------------------------------


def test_every_schema_is_served(server):
    documents = load_schemas().documents
    named = {uri for s in SERVICES for e in s.endpoints for uri in _schema_uris(s, e)}
    assert named <= set(documents), f"endpoints name schemas that do not exist: {named - set(documents)}"
    with httpx.Client(base_url=server.root_url) as client:
        for uri in sorted(named | set(documents)):
            response = client.get(uri)
            assert response.status_code == 200, uri
            assert response.json() == json.loads(json.dumps(documents[uri], default=str)), uri


@pytest.mark.parametrize(
    "path", ["/schemas/auth/v1/no-such-schema.json", "/schemas/", "/schemas/common/v1/error.yml"]
)
def test_unknown_schema_is_a_taskcluster_404(server, path):
    response = get(server, path)
    assert response.status_code == 404
    _assert_taskcluster_error(response, "ResourceNotFound")


# --- OpenAPI ----------------------------------------------------------------------


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []


def _pointer(document: Any, ref: str) -> Any:
    assert ref.startswith("#/components/"), f"{ref} points outside the document"
    node = document
    for token in ref[2:].split("/"):
        node = node[token.replace("~1", "/").replace("~0", "~")]
    return node


def test_openapi_document_is_valid_and_complete(server):
    response = get(server, "/api/openapi.json")
    assert response.status_code == 200
    document = response.json()
    validate_openapi(document)
    for ref in _refs(document):
        _pointer(document, ref)  # self-contained: every $ref resolves inside the document

    operations = {
        op["operationId"]: (path, method, op)
        for path, item in document["paths"].items()
        for method, op in item.items()
    }
    declared = [(s, e) for s in SERVICES for e in s.endpoints]
    assert len(operations) == len(declared)
    for service, endpoint in declared:
        path, method, operation = operations[f"{service.name}.{endpoint.name}"]
        assert path == f"/api/{service.name}/v1" + endpoint.route.replace("<", "{").replace(">", "}")
        assert method == endpoint.method.lower()
        assert operation["summary"] == endpoint.title
        parameters = {(p["in"], p["name"]) for p in operation["parameters"]}
        assert parameters == {("path", a) for a in endpoint.args} | {("query", q) for q in endpoint.query}
        assert ("requestBody" in operation) == bool(endpoint.input or endpoint.accepts_body)
        if endpoint.output:
            assert "$ref" in operation["responses"]["200"]["content"]["application/json"]["schema"]
        not_found = _pointer(document, operation["responses"]["404"]["$ref"])
        error = not_found["content"]["application/json"]["schema"]["allOf"][0]
        assert set(_pointer(document, error["$ref"])["required"]) == {"code", "message", "requestInfo"}
    assert document["components"]["securitySchemes"]["hawk"]["name"] == "Authorization"


# --- The contract with Taskcluster ------------------------------------------------




@pytest.fixture(scope="module")
def reference() -> dict[str, dict[str, dict[str, Any]]]:
    """Taskcluster's endpoints: service -> name -> entry."""
    data = json.loads((reference_dir("endpoints.json") / "endpoints.json").read_text())
    return {
        service: {entry["name"]: entry for entry in entries}
        for service, entries in data.items()
        if not service.startswith("_")
    }


def _canonical_scopes(expression: Any) -> Any:
    """A scope expression template with AllOf/AnyOf operands in a fixed order,
    without the reference's annotations (keys such as `_source`)."""
    if isinstance(expression, (list, tuple)):
        return [_canonical_scopes(e) for e in expression]
    if not isinstance(expression, dict):
        return expression
    canonical = {k: _canonical_scopes(v) for k, v in expression.items() if not k.startswith("_")}
    for key in ("AllOf", "AnyOf"):
        if key in canonical:
            canonical[key] = sorted(canonical[key], key=lambda e: json.dumps(e, sort_keys=True))
    return canonical


def _schema_name(uri: str | None) -> str | None:
    """`v1/create-client-request.json#` -> `create-client-request`."""
    return uri.removesuffix("#").removesuffix(".json").removeprefix("v1/") if uri else None


def _from_reference(entry: dict[str, Any]) -> dict[str, Any]:
    return {
        "method": entry["method"].upper(),
        "route": entry["route"],
        "args": list(entry["args"]),
        "query": sorted(entry["query"]),
        "input": _schema_name(entry["input"]),
        "output": _schema_name(entry["output"]),
        "scopes": _canonical_scopes(entry["scopes"]),
    }


def _from_declaration(endpoint: Endpoint) -> dict[str, Any]:
    return {
        "method": endpoint.method.upper(),
        "route": endpoint.route,
        "args": endpoint.args,
        "query": sorted(endpoint.query),
        "input": endpoint.input,
        "output": endpoint.output,
        "scopes": _canonical_scopes(endpoint.scopes),
    }


DECLARED = [(service, endpoint) for service in SERVICES for endpoint in service.endpoints]


@pytest.mark.parametrize(
    ("service", "endpoint"), DECLARED, ids=[f"{s.name}.{e.name}" for s, e in DECLARED]
)
def test_endpoint_matches_taskcluster(reference, service, endpoint):
    declared = _from_declaration(endpoint)
    upstream = reference.get(service.name, {}).get(endpoint.name)
    if upstream is None:
        key = (service.name, endpoint.name)
        assert key in CAIRN_ONLY, (
            f"{service.name}.{endpoint.name} is not in Taskcluster's reference; if it is "
            "meant to be Cairn-only, add it to CAIRN_ONLY with the reason"
        )
        clashes = [
            name
            for name, entry in reference.get(service.name, {}).items()
            if (entry["method"].upper(), entry["route"]) == (declared["method"], declared["route"])
        ]
        assert not clashes, f"Cairn-only {endpoint.name} takes the method and route of {clashes}"
        return
    assert declared == _from_reference(upstream)


def test_cairn_only_endpoints_are_not_in_taskcluster(reference):
    stale = [key for key in CAIRN_ONLY if key[1] in reference.get(key[0], {})]
    assert not stale, f"in Taskcluster's reference, so check them instead: {stale}"
