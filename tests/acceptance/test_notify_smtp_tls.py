"""E-mail over TLS: STARTTLS when the server offers it, implicit TLS for smtps:// — certificates verified."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.acceptance.notify_fakes import SmtpSink, wait_until
from tests.conftest import free_port


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "smtp.crt", directory / "smtp.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture(params=["starttls", "implicit"])
def smtp(request, tmp_path, monkeypatch) -> Iterator[SmtpSink]:
    cert, key = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    # The client trusts this certificate the way a deployment trusts its own CA: through OpenSSL's bundle.
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    sink = SmtpSink(free_port(), tls=request.param, tls_context=context)
    sink.start()
    yield sink
    sink.stop()


@pytest.fixture
def settings_overrides(smtp):
    return {"smtp_url": smtp.url}


def test_mail_goes_over_tls(server, smtp):
    server.client("notify").email({"address": "a@example.org", "subject": f"over {smtp.tls}", "content": "c"})
    (mail,) = wait_until(lambda: smtp.to("a@example.org"))
    assert mail.subject == f"over {smtp.tls}"
