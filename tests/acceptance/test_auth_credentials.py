"""Ways of presenting credentials: temporary credentials, authorizedScopes, signed URLs,
replays, and the endpoints that check signatures for others."""

from __future__ import annotations

import datetime
from urllib.parse import urlsplit

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


def hawk_header(client_id, access_token, url, method="GET"):
    credentials = {"id": client_id, "key": access_token, "algorithm": "sha256"}
    return mohawk.Sender(credentials, url, method, content="", content_type="").request_header


def client_with(server, client_id, scopes):
    created = server.client("auth").createClient(
        client_id, {"description": "x", "expires": taskcluster.fromNow("1 hour"), "scopes": scopes}
    )
    return created["accessToken"]


def using(server, credentials):
    return taskcluster.Auth({**server.options(), "credentials": credentials})


def test_temporary_credentials_carry_the_scopes_they_name_until_they_expire(server):
    issuer_scopes = ["auth:current-scopes", "thing:*", "auth:create-client:temp/*"]
    token = client_with(server, "test/issuer", issuer_scopes)
    start, expiry = NOW - datetime.timedelta(minutes=1), NOW + datetime.timedelta(minutes=10)

    anonymous = taskcluster.createTemporaryCredentials(
        "test/issuer", token, start, expiry, ["auth:current-scopes", "thing:a"]
    )
    held = using(server, anonymous).currentScopes()["scopes"]
    assert held == ["assume:anonymous", "auth:current-scopes", "thing:a"]

    named = taskcluster.createTemporaryCredentials(
        "test/issuer", token, start, expiry, ["auth:current-scopes", "thing:b"], name="temp/worker"
    )
    assert named["clientId"] == "temp/worker"
    worker = using(server, named)
    assert "thing:b" in worker.currentScopes()["scopes"]
    assert error_of(worker.client, "test/issuer").status_code == 403

    beyond = taskcluster.createTemporaryCredentials("test/issuer", token, start, expiry, ["other:x"])
    assert error_of(using(server, beyond).currentScopes).status_code == 401

    start, expiry = NOW - datetime.timedelta(hours=2), NOW - datetime.timedelta(hours=1)
    expired = taskcluster.createTemporaryCredentials("static/root", ROOT_TOKEN, start, expiry, ["*"])
    refused = error_of(using(server, expired).currentScopes)
    assert refused.status_code == 401
    assert "expired" in refused.body["message"]


def test_authorized_scopes_narrow_a_call(server):
    authorized = ["auth:current-scopes", "auth:get-client:test/*"]
    narrowed = server.client("auth", authorizedScopes=authorized)
    assert narrowed.currentScopes()["scopes"] == ["assume:anonymous", *authorized]
    assert error_of(narrowed.client, "static/root").status_code == 403

    client_with(server, "test/narrow", ["auth:current-scopes"])
    assert narrowed.client("test/narrow")["clientId"] == "test/narrow"

    # Scopes beyond the credentials cannot be authorized.
    token = client_with(server, "test/small", ["auth:current-scopes"])
    widened = server.client("auth", client_id="test/small", access_token=token, authorizedScopes=["*"])
    assert error_of(widened.currentScopes).status_code == 401


def test_signed_urls_expire_and_signed_requests_cannot_be_replayed(server):
    root = server.client("auth")
    client_with(server, "test/signed", [])
    signed = root.buildSignedUrl("client", "test/signed")
    response = httpx.get(signed)
    assert response.status_code == 200
    assert response.json()["clientId"] == "test/signed"

    narrowed = server.client("auth", authorizedScopes=["auth:current-scopes"])
    narrowed_scopes = httpx.get(narrowed.buildSignedUrl("currentScopes")).json()["scopes"]
    assert narrowed_scopes == ["assume:anonymous", "auth:current-scopes"]

    expired = root.buildSignedUrl("currentScopes", expiration=-60)
    assert httpx.get(expired).status_code == 401

    # A request signed once cannot be sent again.
    url = server.root_url + "/api/auth/v1/scopes/current"
    headers = {"Authorization": hawk_header("static/root", ROOT_TOKEN, url)}
    assert httpx.get(url, headers=headers).status_code == 200
    replay = httpx.get(url, headers=headers)
    assert replay.status_code == 401
    assert replay.json()["code"] == "AuthenticationFailed"


def test_signatures_are_checked_for_other_services_and_for_testing(server):
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

    signed = urlsplit(server.client("auth").buildSignedUrl("currentScopes"))
    by_url = auth.authenticateHawk({"method": "get", "resource": f"{signed.path}?{signed.query}",
                                    "host": signed.hostname, "port": signed.port})
    assert (by_url["status"], by_url["scheme"], by_url["clientId"]) == ("auth-success", "hawk", "static/root")

    # testAuthenticate checks signing against its own fixed client, `tester`.
    as_tester = {"client_id": "tester", "access_token": "no-secret"}
    tester = server.client("auth", **as_tester)
    result = tester.testAuthenticate({"clientScopes": ["test-scope:*"], "requiredScopes": ["test-scope:test"]})
    assert result == {"clientId": "tester", "scopes": ["assume:anonymous", "test-scope:*"]}

    narrowed = server.client("auth", **as_tester, authorizedScopes=["test-scope:test1"])
    asking = {"clientScopes": ["test-scope:*"], "requiredScopes": ["test-scope:test2"]}
    refused = error_of(narrowed.testAuthenticate, asking)
    assert refused.body["code"] == "InsufficientScopes"

    wrong = server.client("auth", client_id="tester", access_token="wrong")
    assert error_of(wrong.testAuthenticate, {"clientScopes": [], "requiredScopes": []}).status_code == 401
    # The tester exists only here: it is no client of the deployment.
    assert error_of(tester.currentScopes).status_code == 401

    assert tester.testAuthenticateGet()["clientId"] == "tester"
    assert httpx.get(tester.buildSignedUrl("testAuthenticateGet")).json()["clientId"] == "tester"
    narrowed = server.client("auth", **as_tester, authorizedScopes=["test:other"])
    refused = error_of(narrowed.testAuthenticateGet)
    assert refused.body["code"] == "InsufficientScopes"
