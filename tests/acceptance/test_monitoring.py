"""The monitoring endpoints every service answers, through the official client."""

from __future__ import annotations

import httpx
import pytest
import taskcluster

from cairn.server import SERVICES

SERVICE_NAMES = [s.name for s in SERVICES]
#: Services the official client knows (Cairn's own event stream it does not).
CLIENT_SERVICES = [name for name in SERVICE_NAMES if hasattr(taskcluster, name.capitalize())]


@pytest.mark.parametrize("service", CLIENT_SERVICES)
def test_heartbeat_lbheartbeat_and_version_through_the_official_client(server, service):
    client = server.anonymous(service)
    assert client.lbheartbeat() == {}
    beat = client.heartbeat()
    assert beat["status"] == "ok"
    assert beat["checks"] == {"database": "ok"}
    assert client.version()["version"] == "0.1.0"


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_every_service_answers_the_monitoring_routes(server, service):
    base = f"{server.root_url}/api/{service}/v1"
    assert httpx.get(base + "/__lbheartbeat__").json() == {}
    assert httpx.get(base + "/__heartbeat__").json()["status"] == "ok"
    assert httpx.get(base + "/__version__").json()["name"] == "cairn"


def test_heartbeat_checks_rabbitmq_when_pulse_is_configured(server, amqp_url):
    object.__setattr__(server.runtime.settings, "amqp_url", amqp_url)
    assert server.anonymous("queue").heartbeat()["checks"] == {"database": "ok", "pulse": "ok"}


def test_heartbeat_fails_when_rabbitmq_is_unreachable(server):
    # Nothing listens on port 9 of the loopback: the check fails, the heartbeat says so.
    object.__setattr__(server.runtime.settings, "amqp_url", "amqp://guest:guest@127.0.0.1:9/")
    response = httpx.get(server.root_url + "/api/queue/v1/__heartbeat__", timeout=30)
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["pulse"].startswith("error")


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_references_list_the_monitoring_endpoints(server, service):
    reference = httpx.get(f"{server.root_url}/references/{service}/v1/api.json").json()
    routes = {e["name"]: e["route"] for e in reference["entries"]}
    assert routes["heartbeat"] == "/__heartbeat__"
    assert routes["lbheartbeat"] == "/__lbheartbeat__"
    assert routes["version"] == "/__version__"


def test_version_needs_no_credentials_but_refuses_bad_ones(server):
    assert server.anonymous("auth").version()["name"] == "cairn"
    with pytest.raises(taskcluster.exceptions.TaskclusterAuthFailure):
        server.client("auth", access_token="not-the-right-token").version()
