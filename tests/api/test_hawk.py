"""Requests signed by the official `taskcluster` client authenticate as
Taskcluster's auth service would authenticate them.

Each request is made by a real `taskcluster.Auth`/`Queue` client call whose
HTTP send is intercepted, so header, ext, payload and bewit are exactly
what the client puts on the wire.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import mohawk
import mohawk.util
import pytest
import taskcluster

from cairn.api.hawk import (
    AuthResult,
    ClientRecord,
    HawkAuthenticator,
    HawkRequest,
    NonceStore,
    _parse_header,
    _payload_hash,
)
from cairn.domain.auth.credentials import create_temporary_credentials

ROOT_URL = "https://tc.example.com"
FAR_FUTURE = datetime(2099, 1, 1, tzinfo=timezone.utc)
ROLES = {
    "anonymous": ["auth:current-scopes", "queue:ping"],
    "project:ci": ["secrets:get:project/ci/*"],
}
CI, CI_TOKEN = "project/ci", "T0k3n-of-project-ci-0123456789abcdef0123456"
CI_SCOPES = ["queue:create-task:*", "auth:create-client:project/ci/*", "assume:project:ci"]


def expand(scopes: Iterable[str]) -> list[str]:
    """Role expansion for these tests: `assume:<roleId>` adds the role's scopes."""
    expanded, pending = set(), list(scopes)
    while pending:
        scope = pending.pop()
        if scope not in expanded:
            expanded.add(scope)
            if scope.startswith("assume:"):
                pending += ROLES.get(scope.removeprefix("assume:"), [])
    return sorted(expanded)


def client(client_id, scopes, token=None, expires=FAR_FUTURE, disabled=False) -> ClientRecord:
    token = token or f"{client_id}-token-0123456789"
    return ClientRecord(client_id, token, tuple(expand(scopes)), expires, disabled)


CLIENTS = {
    record.client_id: record
    for record in [
        client(CI, CI_SCOPES, token=CI_TOKEN),
        client("project/narrow", ["queue:create-task:lowest:*"]),
        client("project/old", ["queue:*"], expires=datetime(2020, 1, 1, tzinfo=timezone.utc)),
        client("project/off", ["queue:*"], disabled=True),
    ]
}


@pytest.fixture
def authenticator() -> HawkAuthenticator:
    return HawkAuthenticator(lookup_client=CLIENTS.get, expand_scopes=expand)


def authenticator_at(offset_seconds: float) -> HawkAuthenticator:
    return HawkAuthenticator(CLIENTS.get, expand, clock=lambda: time.time() + offset_seconds)


def credentials(client_id: str) -> dict:
    return {"clientId": client_id, "accessToken": CLIENTS[client_id].access_token}


def auth_client(creds: dict | None, **options) -> taskcluster.Auth:
    return taskcluster.Auth({"rootUrl": ROOT_URL, "credentials": creds, "maxRetries": 0, **options})


class _Ok:
    status_code = 200

    def raise_for_status(self) -> None:
        pass

    def json(self) -> dict:
        return {}


def sent(tc_client: taskcluster.BaseClient, method_name: str, *args, **kwargs) -> HawkRequest:
    """The request the official client sends for one API call."""
    captured = []

    def capture(method, url, payload, headers, session=None):
        captured.append((method, url, payload, headers))
        return _Ok()

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(taskcluster.utils, "makeSingleHttpRequest", capture)
        getattr(tc_client, method_name)(*args, **kwargs)
    ((method, url, payload, headers),) = captured
    body = payload.encode() if payload else b""
    return request_to(method, url, headers.get("Authorization"), body, headers.get("Content-Type"))


def request_to(method, url, authorization=None, body=None, content_type=None) -> HawkRequest:
    parts = urlsplit(url)
    resource = f"{parts.path}?{parts.query}" if parts.query else parts.path
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return HawkRequest(
        method, resource, parts.hostname, port, authorization, "203.0.113.9", body, content_type
    )


def current_scopes(authenticator: HawkAuthenticator, creds: dict, **options) -> AuthResult:
    """Authenticate what the official client sends for auth.currentScopes()."""
    return authenticator.authenticate(sent(auth_client(creds, **options), "currentScopes"))


def create_client(creds: dict) -> HawkRequest:
    """What the official client sends for auth.createClient(): a PUT with a body."""
    return sent(auth_client(creds), "createClient", "project/ci/new", {"description": "x"})


def temporary(issuer: str, scopes: list[str], name=None, start=None, expiry=None) -> dict:
    """Temporary credentials from the official client."""
    start = start or datetime.now(timezone.utc)
    expiry = expiry or start + timedelta(hours=1)
    token = CLIENTS[issuer].access_token
    issued = taskcluster.createTemporaryCredentials(issuer, token, start, expiry, scopes, name=name)
    return {**issued, "accessToken": issued["accessToken"].decode()}


def hand_signed(fields: dict, client_id: str, issuer_token: str) -> dict:
    """Credentials for a hand-made certificate, signed as Taskcluster's manual describes."""
    lines = ["version:1"]
    if "issuer" in fields:
        lines += [f"clientId:{client_id}", f"issuer:{fields['issuer']}"]
    lines += [f"seed:{fields['seed']}", f"start:{fields['start']}", f"expiry:{fields['expiry']}"]
    lines += ["scopes:", *fields["scopes"]]
    key = issuer_token.encode()
    signature = hmac.digest(key, "\n".join(lines).encode(), hashlib.sha256)
    token = hmac.digest(key, fields["seed"].encode(), hashlib.sha256)
    certificate = {**fields, "signature": base64.b64encode(signature).decode()}
    return {
        "clientId": client_id,
        "accessToken": base64.urlsafe_b64encode(token).rstrip(b"=").decode(),
        "certificate": json.dumps(certificate),
    }


def failure(result: AuthResult) -> str:
    assert result.status == "auth-failed", result
    return result.message


# --- permanent clients ------------------------------------------------------


def test_valid_client_gets_its_scopes_and_the_anonymous_roles(authenticator):
    result = current_scopes(authenticator, credentials(CI))
    assert (result.status, result.scheme, result.client_id) == ("auth-success", "hawk", CI)
    assert result.scopes == expand([*CI_SCOPES, "assume:anonymous"])
    assert {"secrets:get:project/ci/*", "queue:ping"} <= set(result.scopes)
    assert result.expires == FAR_FUTURE
    assert result.hash  # the client always signs its payload, even an empty one


def test_request_with_a_body_verifies_its_payload_hash(authenticator):
    request = create_client(credentials(CI))
    assert (request.method, request.content_type) == ("put", "application/json")
    assert authenticator.authenticate(request).status == "auth-success"


def test_wrong_key(authenticator):
    wrong = {"clientId": CI, "accessToken": "not-the-right-token"}
    assert failure(current_scopes(authenticator, wrong)) == "bad mac"


def test_unknown_client(authenticator):
    nobody = {"clientId": "nobody", "accessToken": "whatever"}
    assert failure(current_scopes(authenticator, nobody)) == "unknown client"


def test_expired_client(authenticator):
    result = current_scopes(authenticator, credentials("project/old"))
    assert failure(result) == "client has expired"


def test_disabled_client(authenticator):
    result = current_scopes(authenticator, credentials("project/off"))
    assert failure(result) == "client is disabled"


def test_replayed_nonce_is_refused(authenticator):
    request = sent(auth_client(credentials(CI)), "currentScopes")
    assert authenticator.authenticate(request).status == "auth-success"
    assert failure(authenticator.authenticate(request)) == "nonce already used"


def test_a_refused_request_does_not_use_up_its_nonce(authenticator):
    request = create_client(credentials(CI))
    tampered = dataclasses.replace(request, body=b'{"description":"y"}')
    assert failure(authenticator.authenticate(tampered)) == "payload does not match its hash"
    assert authenticator.authenticate(request).status == "auth-success"


@pytest.mark.parametrize("offset_minutes", [-16, 16])
def test_clock_skew_beyond_15_minutes(offset_minutes):
    request = sent(auth_client(credentials(CI)), "currentScopes")
    assert failure(authenticator_at(offset_minutes * 60).authenticate(request)) == "stale timestamp"


@pytest.mark.parametrize("offset_minutes", [-14, 14])
def test_clock_skew_within_15_minutes(offset_minutes):
    request = sent(auth_client(credentials(CI)), "currentScopes")
    assert authenticator_at(offset_minutes * 60).authenticate(request).status == "auth-success"


def test_tampered_payload(authenticator):
    request = create_client(credentials(CI))
    tampered = dataclasses.replace(request, body=request.body.replace(b'"x"', b'"y"'))
    assert failure(authenticator.authenticate(tampered)) == "payload does not match its hash"


def test_tampered_payload_hash(authenticator):
    request = create_client(credentials(CI))
    body = b'{"description":"y"}'
    signed_hash = mohawk.util.parse_authorization_header(request.authorization)["hash"]
    forged_hash = mohawk.util.calculate_payload_hash(body, "sha256", "application/json").decode()
    forged = request.authorization.replace(signed_hash, forged_hash)
    tampered = dataclasses.replace(request, authorization=forged, body=body)
    assert failure(authenticator.authenticate(tampered)) == "bad mac"


def test_tampered_ext(authenticator):
    narrow = auth_client(credentials(CI), authorizedScopes=["queue:create-task:lowest:*"])
    request = sent(narrow, "currentScopes")
    signed_ext = mohawk.util.parse_authorization_header(request.authorization)["ext"]
    wide = auth_client(credentials(CI), authorizedScopes=["queue:create-task:*"])
    forged = request.authorization.replace(signed_ext, wide.makeHawkExt().decode())
    tampered = dataclasses.replace(request, authorization=forged)
    assert failure(authenticator.authenticate(tampered)) == "bad mac"


def test_header_and_bewit_together_are_refused(authenticator):
    url = auth_client(credentials(CI)).buildSignedUrl("currentScopes")
    header = sent(auth_client(credentials(CI)), "currentScopes").authorization
    assert "together" in failure(authenticator.authenticate(request_to("GET", url, header)))


@pytest.mark.parametrize(
    "header",
    [
        "Bearer abc",
        'Hawk id="x"',
        'Hawk id="x", ts="1", nonce="n", mac="m", bogus="1"',
        'Hawk id="x", ts="1", nonce="n", mac="m", id="y"',
        "Hawk " + "x" * 5000,
    ],
)
def test_malformed_headers(authenticator, header):
    request = request_to("GET", f"{ROOT_URL}/api/auth/v1/ping", header)
    assert failure(authenticator.authenticate(request)) == "invalid Hawk header"


def test_without_a_body_the_hash_is_returned_for_the_caller_to_check(authenticator):
    request = create_client(credentials(CI))
    as_received_by_authenticate_hawk = HawkRequest.from_json(
        {
            "method": "put",
            "resource": request.resource,
            "host": request.host,
            "port": request.port,
            "authorization": request.authorization,
            "sourceIp": "203.0.113.9",
        }
    )
    result = authenticator.authenticate(as_received_by_authenticate_hawk)
    expected = mohawk.util.calculate_payload_hash(request.body, "sha256", "application/json")
    assert result.to_json() == {
        "status": "auth-success",
        "scheme": "hawk",
        "scopes": expand([*CI_SCOPES, "assume:anonymous"]),
        "expires": "2099-01-01T00:00:00.000Z",
        "clientId": CI,
        "hash": expected.decode(),
    }


# --- bewits -------------------------------------------------------------------


def test_bewit(authenticator):
    url = auth_client(credentials(CI)).buildSignedUrl("listClients", query={"prefix": "project/"})
    request = request_to("GET", url)
    assert "?prefix=project%2F&bewit=" in request.resource
    result = authenticator.authenticate(request)
    assert (result.status, result.scheme, result.client_id) == ("auth-success", "bewit", CI)
    assert result.scopes == expand([*CI_SCOPES, "assume:anonymous"])
    assert result.hash is None


def test_bewit_in_the_middle_of_the_query(authenticator):
    url = auth_client(credentials(CI)).buildSignedUrl("listClients", query={"prefix": "p"})
    path, _, query = url.partition("?")
    prefix, bewit = query.split("&")
    request = request_to("GET", f"{path}?{bewit}&{prefix}")
    assert authenticator.authenticate(request).status == "auth-success"


def test_expired_bewit(authenticator):
    url = auth_client(credentials(CI)).buildSignedUrl("currentScopes", expiration=-1)
    assert failure(authenticator.authenticate(request_to("GET", url))) == "bewit has expired"


def test_bewit_only_for_get(authenticator):
    url = auth_client(credentials(CI)).buildSignedUrl("currentScopes")
    assert authenticator.authenticate(request_to("HEAD", url)).status == "auth-success"
    message = failure(authenticator.authenticate(request_to("POST", url)))
    assert message == "bewit is only allowed for GET requests"


def test_bewit_for_another_resource(authenticator):
    url = auth_client(credentials(CI)).buildSignedUrl("currentScopes")
    moved = url.replace("/scopes/current", "/clients/")
    assert failure(authenticator.authenticate(request_to("GET", moved))) == "bad mac"


@pytest.mark.parametrize("bewit", ["", "not*base64", base64.urlsafe_b64encode(b"a\\b").decode()])
def test_garbled_bewit(authenticator, bewit):
    request = request_to("GET", f"{ROOT_URL}/api/auth/v1/ping?bewit={bewit}")
    assert failure(authenticator.authenticate(request)) == "invalid bewit"


def test_bewit_signed_with_temporary_credentials(authenticator):
    creds = temporary(CI, ["queue:create-task:*"], name="project/ci/url")
    url = auth_client(creds).buildSignedUrl("currentScopes")
    result = authenticator.authenticate(request_to("GET", url))
    assert (result.status, result.client_id) == ("auth-success", "project/ci/url")


# --- temporary credentials ----------------------------------------------------


def test_named_temporary_credentials(authenticator):
    scopes = ["queue:create-task:highest:*", "assume:project:ci"]
    creds = temporary(CI, scopes, name="project/ci/task-42")
    result = current_scopes(authenticator, creds)
    assert (result.status, result.client_id) == ("auth-success", "project/ci/task-42")
    assert result.scopes == expand([*scopes, "assume:anonymous"])
    expiry_ms = json.loads(creds["certificate"])["expiry"]
    assert result.expires == datetime.fromtimestamp(expiry_ms / 1000, timezone.utc)


def test_anonymous_temporary_credentials(authenticator):
    creds = temporary(CI, ["queue:create-task:highest:*"])
    result = current_scopes(authenticator, creds)
    assert (result.status, result.client_id) == ("auth-success", CI)
    assert result.scopes == expand(["queue:create-task:highest:*", "assume:anonymous"])


@pytest.mark.parametrize("name", [None, "project/ci/ours"])
def test_credentials_made_here_work_in_the_official_client(authenticator, name):
    now = datetime.now(timezone.utc)
    expiry = now + timedelta(hours=1)
    creds = create_temporary_credentials(CI, CI_TOKEN, now, expiry, ["queue:create-task:*"], name)
    result = current_scopes(authenticator, creds)
    assert (result.status, result.client_id) == ("auth-success", name or CI)


def test_expired_certificate(authenticator):
    start = datetime.now(timezone.utc) - timedelta(hours=2)
    creds = temporary(CI, ["queue:create-task:*"], start=start, expiry=start + timedelta(hours=1))
    assert failure(current_scopes(authenticator, creds)) == "certificate has expired"


def test_certificate_not_yet_valid(authenticator):
    start = datetime.now(timezone.utc) + timedelta(minutes=10)
    creds = temporary(CI, ["queue:create-task:*"], start=start)
    assert failure(current_scopes(authenticator, creds)) == "certificate is not yet valid"


def test_certificate_longer_than_31_days(authenticator):
    now_ms = int(time.time() * 1000)
    fields = {
        "version": 1,
        "scopes": ["queue:create-task:*"],
        "start": now_ms - 1,
        "expiry": now_ms + 31 * 86_400_000,
        "seed": "s" * 44,
        "issuer": CI,
    }
    too_long = hand_signed(fields, "project/ci/long", CI_TOKEN)
    message = failure(current_scopes(authenticator, too_long))
    assert message == "certificate cannot last longer than 31 days"
    just_right = hand_signed({**fields, "start": now_ms}, "project/ci/long", CI_TOKEN)
    assert current_scopes(authenticator, just_right).status == "auth-success"


def test_temporary_credentials_cannot_issue_temporary_credentials(authenticator):
    # Signed with a temporary access token, a certificate names either an
    # issuer that is no client, or the real issuer, whose token it lacks.
    now = datetime.now(timezone.utc)
    scopes = ["queue:create-task:*", "auth:create-client:project/ci/*"]

    def issued_by(first: dict, name: str | None) -> dict:
        return taskcluster.createTemporaryCredentials(
            first["clientId"], first["accessToken"], now, now + timedelta(hours=1), scopes[:1], name
        )

    named, anonymous = temporary(CI, scopes, name="project/ci/first"), temporary(CI, scopes)
    for name in [None, "project/ci/second"]:
        assert failure(current_scopes(authenticator, issued_by(named, name))) == "unknown client"
        message = failure(current_scopes(authenticator, issued_by(anonymous, name)))
        assert message == "certificate signature is not valid"


def test_issuer_lacking_the_certificates_scopes(authenticator):
    creds = temporary(CI, ["queue:create-task:*", "secrets:get:other"], name="project/ci/greedy")
    message = failure(current_scopes(authenticator, creds))
    assert message == "certificate scopes exceed the issuer's scopes"


def test_named_certificate_needs_create_client(authenticator):
    creds = temporary(CI, ["queue:create-task:*"], name="other-project/impostor")
    message = failure(current_scopes(authenticator, creds))
    assert message == "certificate issuer may not create this clientId"


def test_named_certificate_under_its_issuers_own_client_id(authenticator):
    fields = json.loads(temporary(CI, ["queue:create-task:*"], name="project/ci/x")["certificate"])
    creds = hand_signed(fields, CI, CI_TOKEN)
    message = failure(current_scopes(authenticator, creds))
    assert message == "certificate issuer must differ from the clientId"


def test_certificate_from_an_unknown_issuer(authenticator):
    fields = json.loads(temporary(CI, ["queue:create-task:*"], name="project/ci/x")["certificate"])
    creds = hand_signed({**fields, "issuer": "ghost"}, "project/ci/x", CI_TOKEN)
    assert failure(current_scopes(authenticator, creds)) == "unknown client"


# --- authorizedScopes ---------------------------------------------------------


def test_authorized_scopes_narrow_the_callers_scopes(authenticator):
    narrowed = ["queue:create-task:lowest:*"]
    result = current_scopes(authenticator, credentials(CI), authorizedScopes=narrowed)
    assert result.status == "auth-success"
    assert result.scopes == expand(["queue:create-task:lowest:*", "assume:anonymous"])


def test_authorized_scopes_beyond_the_callers_scopes(authenticator):
    beyond = ["queue:create-task:*", "auth:delete-client:*"]
    message = failure(current_scopes(authenticator, credentials(CI), authorizedScopes=beyond))
    assert message == "authorizedScopes are not satisfied by the credentials' scopes"


def test_authorized_scopes_may_rely_on_the_anonymous_role(authenticator):
    creds = credentials("project/narrow")
    result = current_scopes(authenticator, creds, authorizedScopes=["queue:ping"])
    assert result.scopes == expand(["queue:ping", "assume:anonymous"])


def test_authorized_scopes_with_temporary_credentials(authenticator):
    creds = temporary(CI, ["queue:create-task:*"], name="project/ci/temp")
    narrowed = current_scopes(authenticator, creds, authorizedScopes=["queue:create-task:low:*"])
    assert narrowed.scopes == expand(["queue:create-task:low:*", "assume:anonymous"])
    beyond = current_scopes(authenticator, creds, authorizedScopes=["assume:project:ci"])
    assert beyond.status == "auth-failed"


# --- no credentials -----------------------------------------------------------


def test_anonymous_request_gets_the_anonymous_roles_scopes(authenticator):
    request = sent(taskcluster.Queue({"rootUrl": ROOT_URL, "maxRetries": 0}), "ping")
    assert request.authorization is None
    result = authenticator.authenticate(request)
    assert (result.status, result.scheme, result.client_id) == ("no-auth", "none", None)
    assert result.scopes == ["assume:anonymous", "auth:current-scopes", "queue:ping"]
    assert set(result.to_json()) == {"status", "scheme", "scopes", "expires"}


def test_failures_serialise_to_status_and_message(authenticator):
    result = current_scopes(authenticator, {"clientId": "nobody", "accessToken": "x"})
    assert result.to_json() == {"status": "auth-failed", "message": "unknown client"}


# --- agreement with mohawk ---------------------------------------------------


def test_header_parsing_agrees_with_mohawk():
    creds = temporary(CI, ["queue:create-task:*"], name="project/ci/temp")
    narrowed = auth_client(creds, authorizedScopes=["queue:create-task:low:*"])
    for tc_client in [auth_client(credentials(CI)), narrowed]:
        header = sent(tc_client, "createClient", "x", {"description": "d"}).authorization
        assert _parse_header(header) == mohawk.util.parse_authorization_header(header)


@pytest.mark.parametrize(
    "body, content_type",
    [(b"", None), (b'{"a":1}', "application/json; charset=utf-8"), (b"\x00\xff", "Text/Plain")],
)
def test_payload_hash_agrees_with_mohawk(body, content_type):
    expected = mohawk.util.calculate_payload_hash(body, "sha256", content_type)
    assert _payload_hash(body, content_type) == expected


def test_mohawk_receiver_accepts_what_is_accepted_here(authenticator):
    request = create_client(credentials(CI))
    assert authenticator.authenticate(request).status == "auth-success"
    mohawk.Receiver(
        lambda client_id: {"id": client_id, "key": CI_TOKEN, "algorithm": "sha256"},
        request.authorization,
        f"https://{request.host}:{request.port}{request.resource}",
        request.method,
        content=request.body,
        content_type=request.content_type,
        timestamp_skew_in_seconds=900,
    )


# --- the nonce store ----------------------------------------------------------


def test_nonces_are_kept_for_their_replay_window():
    store = NonceStore(lifetime=1800)
    assert store.first_use("c", "1000", "n", now=1000)
    assert not store.first_use("c", "1000", "n", now=2799)
    assert store.first_use("c", "1000", "n", now=2801)
    assert len(store) == 1


def test_nonce_store_is_bounded():
    store = NonceStore(max_entries=3)
    for nonce in "abcde":
        assert store.first_use("c", "1", nonce, now=0)
    assert len(store) == 3
    assert not store.first_use("c", "1", "e", now=0)


def test_nonce_store_accepts_a_nonce_once_across_threads():
    store, accepted, barrier = NonceStore(), [], threading.Barrier(16)

    def race() -> None:
        barrier.wait()
        accepted.append(store.first_use("c", "1", "same", now=0))

    threads = [threading.Thread(target=race) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(accepted) == [False] * 15 + [True]
