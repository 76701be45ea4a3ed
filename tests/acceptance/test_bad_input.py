"""Bad input gets a clear Taskcluster error and changes nothing."""

from __future__ import annotations

import httpx
import mohawk
import pytest
import taskcluster

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


def events_in_log(server) -> int:
    return server.runtime.log.recorder.max_notification_id() or 0


def assert_taskcluster_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"code", "message", "requestInfo"}
    assert body["code"] == code
    assert "Traceback" not in body["message"]


def test_malformed_json_is_refused(server):
    before = events_in_log(server)
    response = put(server, f"/api/queue/v1/task/{taskcluster.slugId()}", b'{"taskQueueId": ')
    assert_taskcluster_error(response, 400, "MalformedPayload")
    assert events_in_log(server) == before


def test_an_oversized_body_is_refused(server):
    before = events_in_log(server)
    body = b'{"payload": "' + b"x" * (70 * 1024) + b'"}'
    response = put(server, f"/api/queue/v1/task/{taskcluster.slugId()}", body)
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
