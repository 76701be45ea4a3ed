"""Signed requests to send, and send again, to any Cairn server behind one name."""

from __future__ import annotations

import json
from typing import Any

import httpx
import mohawk

from tests.conftest import ROOT_TOKEN


class Signed:
    """One request signed as the root client for ``name``: ``to(port)`` sends it (again) to a server there."""

    def __init__(self, name: str, method: str, path: str, body: Any = None):
        self.method, self.path = method, path
        self.content = b"" if body is None else json.dumps(body).encode()
        content_type = "application/json" if body is not None else ""
        credentials = {"id": "static/root", "key": ROOT_TOKEN, "algorithm": "sha256"}
        header = mohawk.Sender(credentials, name + path, method, content=self.content,
                               content_type=content_type).request_header
        self.headers = {"Authorization": header, "Host": name.removeprefix("http://")}
        if body is not None:
            self.headers["Content-Type"] = content_type

    def to(self, port: int) -> httpx.Response:
        return httpx.request(self.method, f"http://127.0.0.1:{port}{self.path}", headers=self.headers,
                             content=self.content, timeout=30)


def refused_as_replay(response: httpx.Response) -> bool:
    body = response.json()
    return response.status_code == 401 and body["code"] == "AuthenticationFailed" and "nonce" in body["message"]
