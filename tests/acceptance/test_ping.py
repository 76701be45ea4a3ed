import pytest
import taskcluster


def test_ping_through_the_official_client(server):
    assert server.client("auth").ping()["alive"] is True


def test_wrong_key_is_refused_with_401(server):
    auth = server.client("auth", access_token="not-the-right-token")
    with pytest.raises(taskcluster.exceptions.TaskclusterAuthFailure) as failure:
        auth.ping()
    assert failure.value.status_code == 401
    assert failure.value.body["code"] == "AuthenticationFailed"


def test_unknown_route_is_a_404_in_taskcluster_format(server):
    import httpx

    response = httpx.get(server.root_url + "/api/auth/v1/no-such-thing")
    assert response.status_code == 404
    body = response.json()
    assert body["code"] == "ResourceNotFound"
    assert set(body) == {"code", "message", "requestInfo"}
