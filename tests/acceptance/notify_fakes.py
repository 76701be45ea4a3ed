"""What the notify service talks to, on loopback: a real SMTP server, and fakes of Slack and Matrix.

The SMTP server is aiosmtpd; it keeps every mail it accepts, with the time
it arrived. The fakes answer as the documented APIs do: Slack's Web API
``chat.postMessage`` (a bearer token; HTTP 200 with ``{"ok": true, "channel",
"ts"}``, or ``{"ok": false, "error": "channel_not_found"}``), and the Matrix
client-server API's ``PUT /_matrix/client/v3/rooms/{roomId}/send/m.room.message/{txnId}``
(a bearer token; ``{"event_id"}``, or 403 ``M_FORBIDDEN`` for a room the
user is not in; a repeated transaction id sends nothing new).
"""

from __future__ import annotations

import email
import json
import ssl
import threading
import time
from dataclasses import dataclass
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

SLACK_TOKEN = "xoxb-test-token"
MATRIX_TOKEN = "syt_test_token"
MATRIX_ROOM = "!room:example.org"
UNKNOWN_SLACK_CHANNEL = "C0UNKNOWN"


@dataclass
class Mail:
    sender: str
    recipients: list[str]
    message: Message
    arrived: float

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    def part(self, content_type: str) -> str:
        for part in self.message.walk():
            if part.get_content_type() == content_type:
                return part.get_payload(decode=True).decode().replace("\r\n", "\n")
        raise AssertionError(f"no {content_type} part in {self.message}")


class SmtpSink:
    """An SMTP server on a loopback port, which can be stopped and started again on that port.

    Given ``login`` and ``password``, it requires AUTH (PLAIN or LOGIN) before it takes a mail.
    """

    def __init__(
        self, port: int, login: str | None = None, password: str | None = None,
        tls: str = "", tls_context: ssl.SSLContext | None = None,
    ):
        self.port = port
        self.login = login
        self.password = password
        #: "" for plain SMTP, "starttls" to offer (and require) STARTTLS, "implicit" for SMTPS.
        self.tls = tls
        self.tls_context = tls_context
        self.mails: list[Mail] = []
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        mail = Mail(envelope.mail_from, list(envelope.rcpt_tos), email.message_from_bytes(envelope.content), time.time())
        with self._lock:
            self.mails.append(mail)
        return "250 Message accepted for delivery"

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        valid = isinstance(data, LoginPassword) and (data.login, data.password) == (
            (self.login or "").encode(), (self.password or "").encode())
        return AuthResult(success=valid, handled=False)

    @property
    def url(self) -> str:
        credentials = f"{self.login}:{self.password}@" if self.login else ""
        scheme = "smtps" if self.tls == "implicit" else "smtp"
        return f"{scheme}://{credentials}127.0.0.1:{self.port}"

    def start(self) -> None:
        auth: dict[str, Any] = {}
        if self.login:
            auth = {"authenticator": self.authenticate, "auth_required": True, "auth_require_tls": False}
        if self.tls == "starttls":
            auth.update(tls_context=self.tls_context, require_starttls=True)
        elif self.tls == "implicit":
            auth.update(ssl_context=self.tls_context)
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port, **auth)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def to(self, address: str) -> list[Mail]:
        with self._lock:
            return [m for m in self.mails if address in m.recipients]

    def wait_for(self, count: int, timeout: float = 15.0) -> list[Mail]:
        give_up = time.monotonic() + timeout
        while len(self.mails) < count and time.monotonic() < give_up:
            time.sleep(0.02)
        return list(self.mails)


class ChatFake:
    """Slack's chat.postMessage and Matrix's room send, on one loopback HTTP server."""

    def __init__(self) -> None:
        self.slack: list[dict[str, Any]] = []
        self.matrix: list[dict[str, Any]] = []
        self._transactions: set[str] = set()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> dict[str, Any]:
                return json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")

            def do_POST(self) -> None:
                body = self._body()
                if self.path != "/slack/api/chat.postMessage":
                    return self._answer(404, {"ok": False, "error": "unknown_method"})
                if self.headers.get("Authorization") != f"Bearer {SLACK_TOKEN}":
                    return self._answer(200, {"ok": False, "error": "invalid_auth"})
                if body.get("channel") == UNKNOWN_SLACK_CHANNEL:
                    return self._answer(200, {"ok": False, "error": "channel_not_found"})
                fake.slack.append(body)
                self._answer(200, {"ok": True, "channel": body["channel"], "ts": f"{time.time():.6f}"})

            def do_PUT(self) -> None:
                body = self._body()
                prefix = "/_matrix/client/v3/rooms/"
                if not self.path.startswith(prefix):
                    return self._answer(404, {"errcode": "M_UNRECOGNIZED", "error": "Unrecognized request"})
                room, kind, event_type, txn = self.path[len(prefix):].split("/")
                if self.headers.get("Authorization") != f"Bearer {MATRIX_TOKEN}":
                    return self._answer(401, {"errcode": "M_UNKNOWN_TOKEN", "error": "Invalid access token"})
                if (kind, event_type) != ("send", "m.room.message"):
                    return self._answer(404, {"errcode": "M_UNRECOGNIZED", "error": "Unrecognized request"})
                if unquote(room) != MATRIX_ROOM:
                    return self._answer(403, {"errcode": "M_FORBIDDEN", "error": "User not in room"})
                if txn not in fake._transactions:
                    fake._transactions.add(txn)
                    fake.matrix.append({"roomId": unquote(room), "txnId": txn, **body})
                self._answer(200, {"event_id": f"${txn}"})

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def wait_until(check: Any, timeout: float = 15.0, interval: float = 0.02) -> Any:
    give_up = time.monotonic() + timeout
    while time.monotonic() < give_up:
        found = check()
        if found:
            return found
        time.sleep(interval)
    return check()
