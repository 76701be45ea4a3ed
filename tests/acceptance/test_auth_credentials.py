"""Ways of presenting credentials: temporary credentials, authorizedScopes, signed URLs,
replays, and the endpoints that check signatures for others."""

from __future__ import annotations

import datetime
from urllib.parse import urlparse

import httpx
import mohawk
import pytest
import taskcluster
from taskcluster.exceptions import TaskclusterAuthFailure, TaskclusterRestFailure

from tests.conftest import ROOT_TOKEN

NOW = datetime.datetime.now(datetime.timezone.utc)


def error_of(call, *args, **kwargs):
    with pytest.raises((TaskclusterRestFailure, TaskclusterAuthFailure)) as failure:
        call(*args, **kwargs)
    return failure.value


def client_with(server, client_id, scopes):
    created = server.client("auth").createClient(
        client_id, {"description": "x", "expires": taskcluster.fromNow("1 hour"), "scopes": scopes}
    )
    return created["accessToken"]


def using(server, credentials):
    return taskcluster.Auth({**server.options(), "credentials": credentials})


def test_temporary_credentials_carry_the_scopes_they_name(server):
    token = client_with(server, "test/issuer", ["auth:current-scopes", "thing:*", "auth:create-client:temp/*"])
    start, expiry = NOW - datetime.timedelta(minutes=1), NOW + datetime.timedelta(minutes=10)

    anonymous = taskcluster.createTemporaryCredentials(
        "test/issuer", token, start, expiry, ["auth:current-scopes", "thing:a"]
    )
    assert using(server, anonymous).currentScopes()["scopes"] == ["assume:anonymous", "auth:current-scopes", "thing:a"]

    named = taskcluster.createTemporaryCredentials(
        "test/issuer", token, start, expiry, ["auth:current-scopes", "thing:b"], name="temp/worker"
    )
    assert named["clientId"] == "temp/worker"
    tester = using(server, named)
    assert "thing:b" in tester.currentScopes()["scopes"]
    assert error_of(tester.client, "test/issuer").status_code == 403

    beyond = taskcluster.createTemporaryCredentials("test/issuer", token, start, expiry, ["other:x"])
    assert error_of(using(server, beyond).currentScopes).status_code == 401


def test_an_expired_certificate_is_refused(server):
    start, expiry = NOW - datetime.timedelta(hours=2), NOW - datetime.timedelta(hours=1)
    expired = taskcluster.createTemporaryCredentials("static/root", ROOT_TOKEN, start, expiry, ["*"])
    refused = error_of(using(server, expired).currentScopes)
    assert refused.status_code == 401
    assert "expired" in refused.body["message"]


def test_authorized_scopes_narrow_a_call(server):
    narrowed = server.client("auth", authorizedScopes=["auth:current-scopes", "auth:get-client:test/*"])
    assert narrowed.currentScopes()["scopes"] == ["assume:anonymous", "auth:current-scopes", "auth:get-client:test/*"]
    assert error_of(narrowed.client, "static/root").status_code == 403

    client_with(server, "test/narrow", ["auth:current-scopes"])
    assert narrowed.client("test/narrow")["clientId"] == "test/narrow"


def test_authorized_scopes_beyond_the_credentials_are_refused(server):
    token = client_with(server, "test/small", ["auth:current-scopes"])
    widened = server.client("auth", client_id="test/small", access_token=token, authorizedScopes=["*"])
    assert error_of(widened.currentScopes).status_code == 401


def test_signed_urls_work_for_a_get_until_they_expire(server):
    root = server.client("auth")
    client_with(server, "test/signed", [])
    signed = root.buildSignedUrl("client", "test/signed")
    response = httpx.get(signed)
    assert response.status_code == 200
    assert response.json()["clientId"] == "test/signed"

    narrowed = server.client("auth", authorizedScopes=["auth:current-scopes"])
    assert httpx.get(narrowed.buildSignedUrl("currentScopes")).json()["scopes"] == [
        "assume:anonymous", "auth:current-scopes",
    ]  # fmt: skip

    expired = root.buildSignedUrl("currentScopes", expiration=-60)
    assert httpx.get(expired).status_code == 401


def test_a_replayed_request_is_refused(server):
    url = server.root_url + "/api/auth/v1/scopes/current"
    sender = mohawk.Sender(
        {"id": "static/root", "key": ROOT_TOKEN, "algorithm": "sha256"},
        url, "GET", content="", content_type="",
    )  # fmt: skip
    headers = {"Authorization": sender.request_header}
    assert httpx.get(url, headers=headers).status_code == 200
    replay = httpx.get(url, headers=headers)
    assert replay.status_code == 401
    assert replay.json()["code"] == "AuthenticationFailed"


def hawk_header(client_id, access_token, url, method="GET"):
    credentials = {"id": client_id, "key": access_token, "algorithm": "sha256"}
    return mohawk.Sender(credentials, url, method, content="", content_type="").request_header


def test_authenticate_hawk_checks_a_request_made_to_another_service(server):
    token = client_with(server, "test/elsewhere", ["thing:x"])
    url = "https://other.example.com/api/thing/v1/x?y=1"
    request = {"method": "get", "resource": "/api/thing/v1/x?y=1", "host": "other.example.com", "port": 443}
    auth = server.anonymous("auth")

    result = auth.authenticateHawk({**request, "authorization": hawk_header("test/elsewhere", token, url)})
    assert result["status"] == "auth-success"
    assert result["clientId"] == "test/elsewhere"
    assert result["scheme"] == "hawk"
    assert "thing:x" in result["scopes"]

    wrong = auth.authenticateHawk({**request, "authorization": hawk_header("test/elsewhere", "x" * 44, url)})
    assert wrong["status"] == "auth-failed"

    assert auth.authenticateHawk(request)["status"] == "no-auth"


def test_test_authenticate_uses_its_own_fixed_client(server):
    tester = server.client("auth", client_id="tester", access_token="no-secret")
    result = tester.testAuthenticate({"clientScopes": ["test-scope:*"], "requiredScopes": ["test-scope:test"]})
    assert result == {"clientId": "tester", "scopes": ["assume:anonymous", "test-scope:*"]}

    narrowed = server.client("auth", client_id="tester", access_token="no-secret",
                             authorizedScopes=["test-scope:test1"])  # fmt: skip
    refused = error_of(narrowed.testAuthenticate, {"clientScopes": ["test-scope:*"], "requiredScopes": ["test-scope:test2"]})
    assert refused.body["code"] == "InsufficientScopes"

    wrong = server.client("auth", client_id="tester", access_token="wrong")
    assert error_of(wrong.testAuthenticate, {"clientScopes": [], "requiredScopes": []}).status_code == 401
    # The tester exists only here: it is no client of the deployment.
    assert error_of(tester.currentScopes).status_code == 401

    assert tester.testAuthenticateGet()["clientId"] == "tester"
    assert httpx.get(tester.buildSignedUrl("testAuthenticateGet")).json()["clientId"] == "tester"
    refused = error_of(server.client("auth", client_id="tester", access_token="no-secret",
                                     authorizedScopes=["test:scopes-abc"]).testAuthenticateGet)  # fmt: skip
    assert refused.body["code"] == "InsufficientScopes"
