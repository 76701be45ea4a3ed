"""The JSON Schemas under schemas/ are well-formed and cover the contract.

Every `schemas/<service>/v1/<name>.yml` is a draft-07 schema whose `$id` is
`/schemas/<service>/v1/<name>.json#` and whose `$ref`s all resolve within
the folder. The auth and index schemas named by Taskcluster's endpoint and
exchange references exist, and accept and reject realistic documents.
"""

import json
import pathlib
import urllib.parse

import pytest
import yaml
from jsonschema import Draft7Validator
from referencing import Registry
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT7

from tests.conftest import reference_dir

REPO = pathlib.Path(__file__).resolve().parents[1]
SCHEMAS = REPO / "schemas"
SCHEMA_FILES = sorted(SCHEMAS.rglob("*.yml"))
DRAFT7_URI = "http://json-schema.org/draft-07/schema#"
CONSTANTS = "/schemas/common/v1/constants.json#/definitions"

# Endpoints whose schemas Cairn does not provide: they hand out credentials
# for third-party services (AWS, Azure, GCP, Sentry, websocktunnel, statsum,
# GitHub apps), which Cairn does not broker.
OUT_OF_SCOPE = {
    "auth": {
        "awsS3Credentials",
        "azureAccounts",
        "azureTables",
        "azureTableSAS",
        "azureContainers",
        "azureContainerSAS",
        "gcpCredentials",
        "sentryDSN",
        "statsumToken",
        "websocktunnelToken",
        "githubRepoToken",
    },
    "index": set(),
    "secrets": set(),
    "hooks": set(),
}


def _load(path):
    """The parsed file, or the YAML error (reported by the file's own test)."""
    try:
        with path.open(encoding="utf-8") as f:
            return yaml.safe_load(f)
    except yaml.YAMLError as error:
        return error


def _expected_id(path):
    relative = path.relative_to(SCHEMAS).with_suffix(".json")
    return f"/schemas/{relative.as_posix()}#"


def _refs(node, base):
    """Yield (base URI, $ref) for every reference in a schema document."""
    if isinstance(node, dict):
        if isinstance(node.get("$id"), str):
            base = urllib.parse.urljoin(base, node["$id"])
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield base, value
            elif key == "properties" and isinstance(value, dict):
                # Property names are data, not keywords: a property may be called "$ref".
                for subschema in value.values():
                    yield from _refs(subschema, base)
            elif key not in ("enum", "const", "default", "examples"):
                yield from _refs(value, base)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item, base)




def _schema_path(service, name):
    """`v1/create-client-request.json#` -> schemas/<service>/v1/create-client-request.yml"""
    stem = name.removesuffix("#").removesuffix(".json")
    return SCHEMAS / service / f"{stem}.yml"


DOCUMENTS = {path: _load(path) for path in SCHEMA_FILES}
REGISTRY = Registry().with_resources(
    # Every file is read as draft-07 whatever its `$schema` says; a wrong
    # `$schema` fails that file's own test instead of breaking collection.
    (document["$id"].rstrip("#"), DRAFT7.create_resource(document))
    for document in DOCUMENTS.values()
    if isinstance(document, dict) and isinstance(document.get("$id"), str)
)


def validator(schema_id):
    """A format-checking validator for the schema with this `$id`."""
    schema = REGISTRY.contents(schema_id.rstrip("#"))
    return Draft7Validator(schema, registry=REGISTRY, format_checker=Draft7Validator.FORMAT_CHECKER)


def assert_valid(schema_id, document):
    errors = [error.message for error in validator(schema_id).iter_errors(document)]
    assert errors == [], f"{schema_id} rejected a valid document: {errors}"


def assert_invalid(schema_id, document):
    assert not validator(schema_id).is_valid(document), f"{schema_id} accepted {document!r}"


# -- every file ---------------------------------------------------------------

def test_every_schema_cairn_names_is_a_file_here():
    """Each endpoint's input and output and each exchange's message schema is one of these files."""
    from cairn.domain.pulse_messages import EXCHANGE_SCHEMAS
    from cairn.server import SERVICES

    named = set(EXCHANGE_SCHEMAS.values())
    for service in SERVICES:
        for endpoint in service.endpoints:
            named |= {service.schema_uri(name) for name in (endpoint.input, endpoint.output) if name}
    files = {document["$id"].rstrip("#") for document in DOCUMENTS.values() if isinstance(document, dict) and "$id" in document}
    assert SCHEMA_FILES, f"no *.yml under {SCHEMAS}"
    assert sorted(named - files) == [], "named by Cairn, but no schema file"
    assert len(named) > 40  # every service's endpoints and both exchanges' messages were found


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=lambda p: p.relative_to(SCHEMAS).as_posix())
def test_schema_file_is_well_formed(path):
    document = DOCUMENTS[path]
    if isinstance(document, yaml.YAMLError):
        pytest.fail(f"not valid YAML: {document}")
    assert isinstance(document, dict), "a schema file must hold a YAML mapping"
    assert document.get("$schema") == DRAFT7_URI
    assert document.get("$id") == _expected_id(path)
    assert isinstance(document.get("title"), str) and document["title"].strip()
    assert isinstance(document.get("description"), str) and document["description"].strip()
    Draft7Validator.check_schema(document)


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=lambda p: p.relative_to(SCHEMAS).as_posix())
def test_every_ref_resolves(path):
    document = DOCUMENTS[path]
    if not isinstance(document, dict):
        pytest.skip("not a schema; see test_schema_file_is_well_formed")
    unresolved = []
    for base, ref in _refs(document, _expected_id(path)):
        try:
            REGISTRY.resolver(base_uri=base.rstrip("#")).lookup(ref)
        except Unresolvable as error:
            unresolved.append(f"{ref} (from {base}): {error!r}")
    assert unresolved == []


def test_ids_are_unique():
    ids = [document.get("$id") for document in DOCUMENTS.values() if isinstance(document, dict)]
    assert len(ids) == len(set(ids))


# -- coverage of Taskcluster's contract ---------------------------------------

@pytest.mark.parametrize("service", ["auth", "index", "secrets", "hooks"])
def test_every_endpoint_schema_exists(service):
    endpoints = json.loads((reference_dir("endpoints.json") / "endpoints.json").read_text())[service]
    missing = sorted(
        f"{endpoint['name']}: {name}"
        for endpoint in endpoints
        if endpoint["name"] not in OUT_OF_SCOPE[service]
        for name in (endpoint["input"], endpoint["output"])
        if name and not _schema_path(service, name).is_file()
    )
    assert missing == []


def test_every_auth_message_schema_exists():
    exchanges = json.loads((reference_dir("exchanges.json") / "exchanges.json").read_text())["auth"]["exchanges"]
    missing = sorted(
        f"{exchange['name']}: {exchange['schema']}"
        for exchange in exchanges
        if not _schema_path("auth", exchange["schema"]).is_file()
    )
    assert missing == []


# -- example documents --------------------------------------------------------

CREATE_CLIENT = {
    "description": "CI deploy bot for project-foo; owner: releng@example.com",
    "expires": "2030-01-01T00:00:00.000Z",
    "scopes": ["queue:create-task:highest:proj-foo/*", "assume:project:foo:ci"],
    "deleteOnExpiration": True,
}

CLIENT = {
    "clientId": "project/foo/ci-deploy",
    "description": "CI deploy bot for project-foo",
    "expires": "2030-01-01T00:00:00.000Z",
    "deleteOnExpiration": False,
    "created": "2024-05-01T12:00:00.000Z",
    "lastModified": "2024-05-02T08:30:00.000Z",
    "lastDateUsed": "2024-05-02T08:30:00.000Z",
    "lastRotated": "2024-05-01T12:00:00.000Z",
    "scopes": ["assume:project:foo:ci"],
    "expandedScopes": ["assume:project:foo:ci", "queue:create-task:highest:proj-foo/*"],
    "disabled": False,
}

ROLE = {
    "roleId": "project:foo:ci",
    "description": "What project-foo's CI may do",
    "scopes": ["queue:create-task:highest:proj-foo/*", "secrets:get:project/foo/*"],
    "expandedScopes": ["queue:create-task:highest:proj-foo/*", "secrets:get:project/foo/*"],
    "created": "2024-05-01T12:00:00.000Z",
    "lastModified": "2024-05-01T12:00:00.000Z",
}

INSERT_TASK = {
    "taskId": "fN1SbArXTPSVFNUvaOlinQ",
    "rank": 1714564800,
    "data": {"revision": "4c6b2f1e", "branch": "main"},
    "expires": "2025-05-01T12:00:00.000Z",
}

INDEXED_TASK = {"namespace": "project.foo.main.latest", **INSERT_TASK}

ERROR = {
    "code": "InsufficientScopes",
    "message": "Client ID anonymous does not have sufficient scopes.",
    "requestInfo": {
        "method": "createClient",
        "params": {"clientId": "project/foo/ci-deploy"},
        "payload": {},
        "time": "2024-05-01T12:00:00.000Z",
    },
}

HISTORY = {
    "events": [
        {
            "position": 41,
            "version": 1,
            "type": "ClientCreated",
            "clientId": "static/taskcluster/root",
            "time": "2024-05-01T12:00:00.000Z",
            "data": {"scopes": ["assume:project:foo:ci"], "expires": "2030-01-01T00:00:00.000Z"},
        },
        {
            "position": 57,
            "version": 2,
            "type": "ClientDisabled",
            "clientId": "static/taskcluster/root",
            "time": "2024-05-02T08:30:00.000Z",
            "data": {},
        },
    ],
    "continuationToken": "57",
}


def _case_ids(cases):
    """`create-client-request-0`, ...: the schema's name and the case's place."""
    return [f"{schema_id.rsplit('/', 1)[-1].removesuffix('.json#')}-{i}" for i, (schema_id, _) in enumerate(cases)]


def _without(document, key):
    return {k: v for k, v in document.items() if k != key}


VALID = [
    ("/schemas/auth/v1/create-client-request.json#", CREATE_CLIENT),
    ("/schemas/auth/v1/create-client-request.json#", {"description": "", "expires": "2030-01-01T00:00:00Z"}),
    ("/schemas/auth/v1/get-client-response.json#", CLIENT),
    ("/schemas/auth/v1/create-client-response.json#", {**CLIENT, "accessToken": "z9IVvrIETvGBLkyNJuqBKA3mMp1KnBQLmILkHXXcOoRA"}),
    ("/schemas/auth/v1/list-clients-response.json#", {"clients": [CLIENT], "continuationToken": "abc"}),
    ("/schemas/auth/v1/get-role-response.json#", ROLE),
    ("/schemas/auth/v1/list-roles-response.json#", [ROLE]),
    ("/schemas/auth/v1/list-roles2-response.json#", {"roles": [ROLE]}),
    ("/schemas/auth/v1/create-role-request.json#", {"scopes": ROLE["scopes"], "description": "CI"}),
    ("/schemas/auth/v1/scopeset.json#", {"scopes": ["assume:repo:github.com/foo/bar:*", "queue:*"]}),
    ("/schemas/auth/v1/role-message.json#", {"version": 1, "roleId": "project:foo:ci"}),
    ("/schemas/auth/v1/client-message.json#", {"version": 1, "clientId": "project/foo/ci-deploy"}),
    ("/schemas/auth/v1/list-entity-history-response.json#", HISTORY),
    (
        "/schemas/auth/v1/authenticate-hawk-request.json#",
        {"method": "get", "resource": "/api/queue/v1/task/x?a=1", "host": "tc.example.com", "port": 443,
         "authorization": 'Hawk id="root", ts="1", nonce="n", mac="m"', "sourceIp": "2001:db8::1"},
    ),
    (
        "/schemas/auth/v1/authenticate-hawk-response.json#",
        {"status": "auth-success", "scopes": ["queue:*"], "scheme": "hawk", "clientId": "root",
         "expires": "2024-05-01T12:15:00.000Z"},
    ),
    ("/schemas/auth/v1/authenticate-hawk-response.json#", {"status": "auth-failed", "message": "ts skewed"}),
    ("/schemas/index/v1/insert-task-request.json#", INSERT_TASK),
    ("/schemas/index/v1/indexed-task-response.json#", INDEXED_TASK),
    ("/schemas/index/v1/list-tasks-response.json#", {"tasks": [INDEXED_TASK]}),
    ("/schemas/index/v1/list-tasks-at-index.json#", {"indexes": ["project.foo.main.latest"]}),
    (
        "/schemas/index/v1/list-namespaces-response.json#",
        {"namespaces": [{"namespace": "project.foo", "name": "foo", "expires": "2025-05-01T12:00:00.000Z"}]},
    ),
    ("/schemas/common/v1/error.json#", ERROR),
]


@pytest.mark.parametrize("schema_id, document", VALID, ids=_case_ids(VALID))
def test_accepts_valid_document(schema_id, document):
    assert_valid(schema_id, document)


INVALID = [
    ("/schemas/auth/v1/create-client-request.json#", _without(CREATE_CLIENT, "description")),
    ("/schemas/auth/v1/create-client-request.json#", {**CREATE_CLIENT, "clientId": "project/foo/ci-deploy"}),
    ("/schemas/auth/v1/create-client-request.json#", {**CREATE_CLIENT, "scopes": ["queue:\u00e9"]}),
    ("/schemas/auth/v1/create-client-request.json#", {**CREATE_CLIENT, "scopes": ["a\nb"]}),
    ("/schemas/auth/v1/create-client-request.json#", {**CREATE_CLIENT, "scopes": ["queue:*", "queue:*"]}),
    ("/schemas/auth/v1/create-client-request.json#", {**CREATE_CLIENT, "description": "x" * 10241}),
    ("/schemas/auth/v1/get-client-response.json#", {**CLIENT, "accessToken": "z9IVvrIETvGBLkyNJuqBKA"}),
    ("/schemas/auth/v1/get-client-response.json#", {**CLIENT, "clientId": "has space"}),
    ("/schemas/auth/v1/create-client-response.json#", {**CLIENT, "accessToken": "too-short"}),
    ("/schemas/auth/v1/get-role-response.json#", _without(ROLE, "expandedScopes")),
    ("/schemas/auth/v1/get-role-response.json#", {**ROLE, "roleId": ""}),
    ("/schemas/auth/v1/role-message.json#", {"version": 2, "roleId": "project:foo:ci"}),
    ("/schemas/auth/v1/authenticate-hawk-request.json#", {"method": "GET", "resource": "/", "host": "h", "port": 80}),
    (
        "/schemas/auth/v1/authenticate-hawk-request.json#",
        {"method": "get", "resource": "/", "host": "h", "port": 80, "sourceIp": "not-an-ip"},
    ),
    ("/schemas/auth/v1/authenticate-hawk-response.json#", {"status": "auth-success", "scopes": []}),
    (
        "/schemas/auth/v1/list-entity-history-response.json#",
        {"events": [{**HISTORY["events"][0], "type": "create client"}]},
    ),
    ("/schemas/index/v1/insert-task-request.json#", {**INSERT_TASK, "taskId": "not-a-slugid"}),
    ("/schemas/index/v1/insert-task-request.json#", _without(INSERT_TASK, "rank")),
    ("/schemas/index/v1/insert-task-request.json#", {**INSERT_TASK, "data": "a string"}),
    ("/schemas/index/v1/indexed-task-response.json#", {**INDEXED_TASK, "namespace": "a." * 128}),
    ("/schemas/index/v1/indexed-task-response.json#", _without(INDEXED_TASK, "namespace")),
    ("/schemas/common/v1/error.json#", _without(ERROR, "requestInfo")),
]


@pytest.mark.parametrize("schema_id, document", INVALID, ids=_case_ids(INVALID))
def test_rejects_invalid_document(schema_id, document):
    assert_invalid(schema_id, document)


@pytest.mark.skipif(
    "date-time" not in Draft7Validator.FORMAT_CHECKER.checkers,
    reason="date-time is only checked with rfc3339-validator installed (jsonschema[format])",
)
def test_rejects_bad_timestamp():
    assert_invalid("/schemas/index/v1/insert-task-request.json#", {**INSERT_TASK, "expires": "next tuesday"})


# -- shared definitions -------------------------------------------------------

@pytest.mark.parametrize(
    "definition, value, valid",
    [
        ("slugid", "fN1SbArXTPSVFNUvaOlinQ", True),
        ("slugid", "fN1SbArXTPSVFNUvaOlinB", False),
        ("slugid", "fN1SbArXAPSVFNUvaOlinQ", False),
        ("scopeExpression", "queue:create-task:*", True),
        ("scopeExpression", {"AllOf": ["a", {"AnyOf": ["b", "c"]}]}, True),
        ("scopeExpression", {"AllOf": ["a"], "AnyOf": ["b"]}, False),
        ("scopeExpression", {"OneOf": ["a"]}, False),
        ("clientId", "mozilla-auth0/ad|Mozilla-LDAP|someone/ci", True),
        ("clientId", "no spaces", False),
        ("identifier", "gecko-t", True),
        ("identifier", "x" * 39, False),
        ("identifier", "with.dot", False),
        ("taskQueueId", "proj-foo/ci", True),
        ("taskQueueId", "proj-foo/CI_Linux", False),
        ("projectId", "mozilla/releng", True),
        ("projectId", "a:b", False),
        ("indexNamespace", "project.foo.main.latest", True),
        ("indexNamespace", "project..latest", False),
    ],
)
def test_shared_definition(definition, value, valid):
    schema = {"$ref": f"{CONSTANTS}/{definition}"}
    assert Draft7Validator(schema, registry=REGISTRY).is_valid(value) is valid
