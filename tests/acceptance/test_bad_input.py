"""Bad input gets a clear Taskcluster error and changes nothing."""

from __future__ import annotations

import json
import re

import httpx
import mohawk
import pytest
import taskcluster

from tests.acceptance.queue_helpers import task_definition
from tests.conftest import ROOT_TOKEN


@pytest.fixture
def settings_overrides():
    return {"max_body_bytes": 64 * 1024}


def put(server, path: str, body: bytes, content_type: str = "application/json") -> httpx.Response:
    url = server.root_url + path
    sender = mohawk.Sender(
        {"id": "static/root", "key": ROOT_TOKEN, "algorithm": "sha256"},
        url, "PUT", content=body, content_type=content_type,
    )
    return httpx.put(url, content=body, headers={"Authorization": sender.request_header, "Content-Type": content_type})


def as_root(server, method: str, path: str, body: object = None) -> httpx.Response:
    """A request signed as root, with ``body`` (if any) as JSON."""
    url = server.root_url + path
    content = json.dumps(body).encode() if body is not None else b""
    content_type = "application/json" if content else ""
    sender = mohawk.Sender(
        {"id": "static/root", "key": ROOT_TOKEN, "algorithm": "sha256"},
        url, method, content=content, content_type=content_type, always_hash_content=bool(content),
    )
    headers = {"Authorization": sender.request_header}
    if content:
        headers["Content-Type"] = content_type
    return httpx.request(method, url, content=content, headers=headers)


def events_in_log(server) -> int:
    return server.runtime.log.recorder.max_notification_id() or 0


def assert_taskcluster_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"code", "message", "requestInfo"}
    assert body["code"] == code
    assert "Traceback" not in body["message"]


@pytest.mark.parametrize(
    "body",
    [b'{"taskQueueId": ', b"", b"\xff\xfe{}", b'{"priority": NaN}', b"[" * 2000 + b"]" * 2000],
    ids=["truncated", "empty", "not-utf-8", "nan", "deeper-than-the-parser-goes"],
)
def test_malformed_json_is_refused(server, body):
    before = events_in_log(server)
    response = put(server, f"/api/queue/v1/task/{taskcluster.slugId()}", body)
    assert_taskcluster_error(response, 400, "MalformedPayload")
    assert events_in_log(server) == before


def nested(depth: int) -> object:
    value: object = []
    for _ in range(depth - 1):
        value = [value]
    return value


def test_a_body_nested_too_deep_to_store_is_refused(server):
    """orjson reads 1,024 levels but writes only 255: such a body once got a bare 500."""
    before = events_in_log(server)
    task = {**task_definition(), "payload": {"deep": nested(300)}}
    response = put(server, f"/api/queue/v1/task/{taskcluster.slugId()}", json.dumps(task).encode())
    assert_taskcluster_error(response, 400, "MalformedPayload")
    assert "deeper than 100 levels" in response.json()["message"]
    entry = {"taskId": taskcluster.slugId(), "rank": 0, "expires": "2030-01-01T00:00:00.000Z", "data": nested(300)}
    response = put(server, "/api/index/v1/task/project.deep", json.dumps(entry).encode())
    assert_taskcluster_error(response, 400, "MalformedPayload")
    assert events_in_log(server) == before


def test_a_body_nested_a_little_is_accepted(server):
    task = {**task_definition(), "payload": {"deep": nested(50)}}
    response = put(server, f"/api/queue/v1/task/{taskcluster.slugId()}", json.dumps(task).encode())
    assert response.status_code == 200, response.text


def test_an_oversized_body_is_refused(server):
    before = events_in_log(server)
    body = b'{"payload": "' + b"x" * (70 * 1024) + b'"}'
    response = put(server, f"/api/queue/v1/task/{taskcluster.slugId()}", body)
    assert_taskcluster_error(response, 413, "InputTooLarge")
    assert events_in_log(server) == before


def test_an_oversized_body_without_a_length_is_refused(server):
    before = events_in_log(server)
    chunks = (b"x" * 1024 for _ in range(70))  # sent chunked: no Content-Length to go by
    url = f"{server.root_url}/api/queue/v1/task/{taskcluster.slugId()}"
    response = httpx.put(url, content=chunks, headers={"Content-Type": "application/json"})
    assert_taskcluster_error(response, 413, "InputTooLarge")
    assert events_in_log(server) == before


def test_a_body_that_breaks_the_schema_is_refused(server):
    before = events_in_log(server)
    response = put(server, f"/api/queue/v1/task/{taskcluster.slugId()}", b'{"payload": {}, "priority": 7}')
    assert_taskcluster_error(response, 400, "InputValidationError")
    assert "priority" in response.json()["message"]
    assert events_in_log(server) == before


def test_a_tampered_body_fails_its_payload_hash(server):
    url = server.root_url + f"/api/auth/v1/clients/{'tampered'}"
    signed = b'{"description": "x", "expires": "2030-01-01T00:00:00.000Z"}'
    sender = mohawk.Sender(
        {"id": "static/root", "key": ROOT_TOKEN, "algorithm": "sha256"},
        url, "PUT", content=signed, content_type="application/json",
    )
    sent = signed.replace(b'"x"', b'"y"')
    response = httpx.put(url, content=sent, headers={"Authorization": sender.request_header, "Content-Type": "application/json"})
    assert_taskcluster_error(response, 401, "AuthenticationFailed")


def test_a_bewit_cannot_be_used_for_a_post(server):
    queue = server.client("queue")
    signed = queue.buildSignedUrl("status", taskcluster.slugId())
    bewit = signed.split("bewit=", 1)[1]
    response = httpx.post(f"{server.root_url}/api/queue/v1/task/{taskcluster.slugId()}/cancel?bewit={bewit}")
    assert_taskcluster_error(response, 401, "AuthenticationFailed")


def test_wrong_method_and_unknown_service_are_404s(server):
    assert_taskcluster_error(httpx.delete(server.root_url + "/api/queue/v1/ping"), 404, "ResourceNotFound")
    assert_taskcluster_error(httpx.get(server.root_url + "/api/nothing/v1/ping"), 404, "ResourceNotFound")


def test_batch_lookups_without_task_ids_find_nothing(server):
    """`taskIds` defaults to [] (as in Taskcluster's schema); an empty body once got a 500."""
    queue = server.client("queue")
    assert queue.tasks({}) == {"tasks": []}
    assert queue.statuses({}) == {"statuses": []}


@pytest.mark.parametrize("worker_type", ["0", "Linux", "linux_"])
def test_a_worker_cannot_be_declared_outside_a_valid_task_queue(server, worker_type):
    """The declared worker's task queue `prov/<workerType>` must be a taskQueueId; once a 500."""
    before = events_in_log(server)
    path = f"/api/queue/v1/provisioners/prov/worker-types/{worker_type}/group/worker"
    response = put(server, path, b'{"expires": "2030-01-01T00:00:00.000Z"}')
    assert_taskcluster_error(response, 400, "InvalidRequestArguments")
    assert "workerType" in response.json()["message"]
    assert events_in_log(server) == before


def test_the_openapi_document_says_what_query_and_route_arguments_are_accepted(server):
    """Schemathesis, reading the document, once sent limits, prefixes and worker
    filters the server refuses, and could not send a taskQueueId at all."""
    document = httpx.get(server.root_url + "/api/openapi.json").json()
    parameters = {
        (operation["operationId"], parameter["name"]): parameter
        for item in document["paths"].values()
        for operation in item.values()
        for parameter in operation["parameters"]
    }
    assert parameters["queue.listProvisioners", "limit"]["schema"] == {"type": "integer", "minimum": 1}
    prefix = parameters["auth.listClients", "prefix"]["schema"]["pattern"]
    assert re.fullmatch(prefix, "project/ci") and not re.search(prefix, "a b")
    assert parameters["queue.listWorkers", "quarantined"]["schema"]["enum"] == ["true", "false"]
    slashed = ["queue.claimWork taskQueueId", "queue.getArtifact name", "auth.client clientId", "auth.role roleId"]
    for key in (tuple(s.split()) for s in slashed):
        parameter = parameters[key]
        assert "/" in parameter["example"]
        assert re.search(parameter["schema"]["pattern"], parameter["example"])
    for limit in ("ten", "0", "-1"):
        response = as_root(server, "GET", f"/api/queue/v1/provisioners?limit={limit}")
        assert_taskcluster_error(response, 400, "InvalidRequestArguments")


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("PUT", "/api/auth/v1/clients/nul", {"description": "a\u0000b", "expires": "2030-01-01T00:00:00.000Z"}),
        ("POST", "/api/queue/v1/tasks", {"taskIds": ["\u0000"]}),
        ("PUT", "/api/queue/v1/task/fN1SbArXTPSVFNUvaOlinQ", task_definition(payload={"env": {"A\u0000": "1"}})),
    ],
    ids=["in-a-value", "in-a-lookup", "in-a-key"],
)
def test_a_nul_character_in_a_body_is_refused_on_both_back_ends(server, method, path, body):
    """PostgreSQL stores NUL neither in text nor in jsonb: such bodies once got a 500 there."""
    before = events_in_log(server)
    response = as_root(server, method, path, body)
    assert_taskcluster_error(response, 400, "InputValidationError")
    assert "NUL" in response.json()["message"]
    assert events_in_log(server) == before


def test_a_backslash_before_u0000_is_no_nul(server):
    task = task_definition(payload={"text": "\\u0000"})
    response = as_root(server, "PUT", f"/api/queue/v1/task/{taskcluster.slugId()}", task)
    assert response.status_code == 200, response.text
    assert server.client("queue").task(response.json()["status"]["taskId"])["payload"] == {"text": "\\u0000"}


@pytest.mark.parametrize(
    "path",
    ["/api/auth/v1/clients/", "/api/queue/v1/provisioners", "/api/queue/v1/task-queues", "/api/index/v1/tasks/a"],
)
def test_a_continuation_token_that_decodes_to_nul_is_refused(server, path):
    """`AA` is base64 for a NUL byte: on PostgreSQL such a token once got a 500."""
    response = as_root(server, "GET", f"{path}?continuationToken=AA")
    assert_taskcluster_error(response, 400, "InvalidRequestArguments")
