"""E-mail to an SMTP server that requires a login: the credentials come from CAIRN_SMTP_URL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.acceptance.notify_fakes import SmtpSink, wait_until
from tests.conftest import free_port

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    sink = SmtpSink(free_port(), login="cairn", password="s3cret")
    sink.start()
    yield sink
    sink.stop()


@pytest.fixture
def settings_overrides(smtp):
    return {"smtp_url": smtp.url}


def test_mail_goes_through_a_server_that_requires_a_login(server, smtp):
    server.client("notify").email({"address": "a@example.org", "subject": "logged in", "content": "c"})
    (mail,) = wait_until(lambda: smtp.to("a@example.org"))
    assert mail.subject == "logged in"


def test_wrong_credentials_are_a_recorded_failure(server, smtp):
    smtp.password = "changed"
    server.client("notify").email({"address": "b@example.org", "subject": "refused", "content": "c"})
    (failed,) = wait_until(lambda: server.runtime.notify.reads.in_state("failed"))
    assert "535" in failed["lastError"] and smtp.mails == []
