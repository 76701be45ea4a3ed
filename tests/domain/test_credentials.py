"""Temporary credentials are interchangeable with the official client's.

Certificates made here are byte for byte what `taskcluster.createTemporaryCredentials`
makes from the same seed, and certificates it makes verify here, yielding
the same temporary access token.
"""

from __future__ import annotations

import json
import string
from datetime import datetime, timedelta, timezone

import pytest
import taskcluster

from cairn.domain.auth.credentials import (
    Certificate,
    InvalidCertificate,
    create_temporary_credentials,
    generate_access_token,
    verify_certificate,
)

ISSUER, ISSUER_TOKEN = "project/issuer", "gK3uNbAHS2K3hVEHTl2g9AZuHhgqOKSBuCD0n-P3rKkw"
START = datetime(2030, 5, 1, 12, 0, tzinfo=timezone.utc)
EXPIRY = START + timedelta(hours=6)
SCOPES = ["queue:create-task:highest:proj/*", "assume:project:proj:ci"]


def official(start=START, expiry=EXPIRY, scopes=SCOPES, name=None, seed=None, monkeypatch=None):
    """taskcluster.createTemporaryCredentials, optionally with a chosen seed."""
    if seed is not None:
        halves = iter([seed[:22], seed[22:]])
        monkeypatch.setattr(taskcluster.utils, "slugId", lambda: next(halves))
    created = taskcluster.createTemporaryCredentials(
        ISSUER, ISSUER_TOKEN, start, expiry, scopes, name=name
    )
    return {**created, "accessToken": created["accessToken"].decode()}


@pytest.mark.parametrize("name", [None, "project/issuer/ci-run"])
def test_certificate_is_byte_for_byte_the_official_one(monkeypatch, name):
    ours = create_temporary_credentials(ISSUER, ISSUER_TOKEN, START, EXPIRY, SCOPES, name=name)
    seed = json.loads(ours["certificate"])["seed"]
    assert ours == official(name=name, seed=seed, monkeypatch=monkeypatch)


def test_named_certificate_names_its_issuer():
    created = create_temporary_credentials(ISSUER, ISSUER_TOKEN, START, EXPIRY, SCOPES, "ci-run")
    certificate = json.loads(created["certificate"])
    assert created["clientId"] == "ci-run"
    assert list(certificate) == [
        "version", "scopes", "start", "expiry", "seed", "issuer", "signature"
    ]  # fmt: skip
    assert certificate["issuer"] == ISSUER
    assert certificate["start"] == 1903867200000 and certificate["expiry"] == 1903888800000
    assert len(certificate["seed"]) == 44


def test_anonymous_certificate_keeps_the_issuers_client_id():
    created = create_temporary_credentials(ISSUER, ISSUER_TOKEN, START, EXPIRY, SCOPES)
    assert created["clientId"] == ISSUER
    assert "issuer" not in json.loads(created["certificate"])


@pytest.mark.parametrize("name", [None, "ci-run"])
def test_official_certificates_verify_and_yield_the_official_token(name):
    created = official(name=name)
    certificate = Certificate.parse(created["certificate"])
    token = verify_certificate(certificate, ISSUER_TOKEN, created["clientId"])
    assert token == created["accessToken"]


@pytest.mark.parametrize("name", [None, "ci-run"])
def test_own_certificates_verify(name):
    created = create_temporary_credentials(ISSUER, ISSUER_TOKEN, START, EXPIRY, SCOPES, name=name)
    certificate = Certificate.parse(created["certificate"])
    token = verify_certificate(certificate, ISSUER_TOKEN, created["clientId"])
    assert token == created["accessToken"]
    assert certificate.expires == EXPIRY


def test_signature_depends_on_issuer_token():
    certificate = Certificate.parse(official()["certificate"])
    with pytest.raises(InvalidCertificate, match="signature"):
        verify_certificate(certificate, generate_access_token(), ISSUER)


def test_named_signature_binds_the_client_id():
    certificate = Certificate.parse(official(name="ci-run")["certificate"])
    with pytest.raises(InvalidCertificate, match="signature"):
        verify_certificate(certificate, ISSUER_TOKEN, "someone-else")


def test_signature_covers_the_scopes():
    fields = json.loads(official()["certificate"])
    fields["scopes"] = [*fields["scopes"], "auth:*"]
    with pytest.raises(InvalidCertificate, match="signature"):
        verify_certificate(Certificate.parse(fields), ISSUER_TOKEN, ISSUER)


def test_at_most_31_days():
    create_temporary_credentials(ISSUER, ISSUER_TOKEN, START, START + timedelta(days=31), SCOPES)
    with pytest.raises(ValueError, match="31 days"):
        expiry = START + timedelta(days=31, milliseconds=1)
        create_temporary_credentials(ISSUER, ISSUER_TOKEN, START, expiry, SCOPES)


def test_rejects_non_string_scopes_and_reversed_times():
    with pytest.raises(ValueError):
        create_temporary_credentials(ISSUER, ISSUER_TOKEN, START, EXPIRY, ["ok", 7])
    with pytest.raises(ValueError):
        create_temporary_credentials(ISSUER, ISSUER_TOKEN, EXPIRY, START, SCOPES)


def test_naive_datetimes_are_utc_like_the_official_client(monkeypatch):
    start, expiry = START.replace(tzinfo=None), EXPIRY.replace(tzinfo=None)
    naive = create_temporary_credentials(ISSUER, ISSUER_TOKEN, start, expiry, SCOPES)
    certificate = json.loads(naive["certificate"])
    assert (certificate["start"], certificate["expiry"]) == (1903867200000, 1903888800000)
    assert naive == official(start, expiry, seed=certificate["seed"], monkeypatch=monkeypatch)


def test_milliseconds_are_kept():
    start = START + timedelta(microseconds=1500)
    created = create_temporary_credentials(ISSUER, ISSUER_TOKEN, start, EXPIRY, SCOPES)
    assert json.loads(created["certificate"])["start"] == 1903867200001


@pytest.mark.parametrize(
    "change, message",
    [
        ({"version": 2}, "version"),
        ({"version": True}, "version"),
        ({"seed": "short"}, "seed"),
        ({"start": "1903867200000"}, "number"),
        ({"expiry": None}, "number"),
        ({"expiry": 1903867200000 + 31 * 86_400_000 + 1}, "31 days"),
        ({"scopes": "queue:*"}, "scopes"),
        ({"scopes": ["tab\tscope"]}, "scopes"),
        ({"clientId": "ci-run"}, "clientId"),
        ({"issuer": 42}, "issuer"),
        ({"signature": None}, "signature"),
    ],
)
def test_parse_rejects_malformed_certificates(change, message):
    fields = {**json.loads(official()["certificate"]), **change}
    with pytest.raises(InvalidCertificate, match=message):
        Certificate.parse(fields)


def test_parse_rejects_non_objects():
    for value in ["[]", "not json", 17]:
        with pytest.raises(InvalidCertificate):
            Certificate.parse(value)


def test_in_effect_within_five_minutes_of_start_and_expiry():
    certificate = Certificate.parse(official()["certificate"])
    certificate.check_in_effect(START - timedelta(minutes=5))
    certificate.check_in_effect(EXPIRY + timedelta(minutes=5))
    with pytest.raises(InvalidCertificate, match="not yet valid"):
        certificate.check_in_effect(START - timedelta(minutes=5, milliseconds=1))
    with pytest.raises(InvalidCertificate, match="expired"):
        certificate.check_in_effect(EXPIRY + timedelta(minutes=5, milliseconds=1))


def test_generated_access_tokens_are_44_url_safe_characters():
    tokens = {generate_access_token() for _ in range(100)}
    assert len(tokens) == 100
    alphabet = set(string.ascii_letters + string.digits + "-_")
    assert all(len(token) == 44 and set(token) <= alphabet for token in tokens)
