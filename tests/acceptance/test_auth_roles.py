"""Roles through the official taskcluster client: created, assumed, changed, listed, deleted."""

from __future__ import annotations

import pytest
import taskcluster
from taskcluster.exceptions import TaskclusterRestFailure


def error_of(call, *args, **kwargs):
    with pytest.raises(TaskclusterRestFailure) as failure:
        call(*args, **kwargs)
    return failure.value


def client_with(server, client_id, scopes):
    created = server.client("auth").createClient(
        client_id, {"description": "x", "expires": taskcluster.fromNow("1 hour"), "scopes": scopes}
    )
    return server.client("auth", client_id=client_id, access_token=created["accessToken"])


def test_a_role_grants_its_scopes_to_those_who_assume_it(server):
    root = server.client("auth")
    role = root.createRole("project:builder", {"description": "builds", "scopes": ["queue:b", "queue:a"]})
    assert role["roleId"] == "project:builder"
    assert role["scopes"] == ["queue:a", "queue:b"]  # sorted, as Taskcluster stores them
    assert role["expandedScopes"] == ["assume:project:builder", "queue:a", "queue:b"]
    assert role["created"].endswith("Z")

    # The same create again is harmless and answers the same role.
    again = {"description": "builds", "scopes": ["queue:a", "queue:b"]}
    assert root.createRole("project:builder", again) == role
    conflict = error_of(root.createRole, "project:builder", {"description": "other", "scopes": []})
    assert (conflict.status_code, conflict.body["code"]) == (409, "RequestConflict")

    auth = client_with(server, "test/builder", ["assume:project:builder", "auth:current-scopes"])
    assert {"queue:a", "queue:b"} <= set(auth.currentScopes()["scopes"])
    assert "queue:a" in root.client("test/builder")["expandedScopes"]
    assert root.role("project:builder") == role

    # Star roles match by prefix and pass what the `*` matched as `<..>`.
    root.createRole("repo:github.com/org/*", {"description": "repos", "scopes": ["secrets:get:org/<..>"]})
    root.createRole("repo:github.com/org/app:*", {"description": "app", "scopes": ["hooks:trigger:<..>"]})
    expanded = root.expandScopes({"scopes": ["assume:repo:github.com/org/app:main"]})["scopes"]
    assert expanded == [
        "assume:repo:github.com/org/app:main",
        "hooks:trigger:main",
        "secrets:get:org/app:main",
    ]
    assert root.expandScopes({"scopes": ["plain"]}) == {"scopes": ["plain"]}
    assert root.expandScopes({"scopes": []}) == {"scopes": []}


def test_update_and_delete_change_what_callers_hold(server):
    root = server.client("auth")
    root.createRole("team", {"description": "the team", "scopes": ["auth:current-scopes", "thing:a"]})
    member = client_with(server, "test/member", ["assume:team"])
    assert "thing:a" in member.currentScopes()["scopes"]

    scopes = ["auth:current-scopes", "thing:b"]
    updated = root.updateRole("team", {"description": "still the team", "scopes": scopes})
    assert updated["description"] == "still the team"
    held = member.currentScopes()["scopes"]
    assert "thing:b" in held and "thing:a" not in held

    assert root.deleteRole("team") is None
    assert root.deleteRole("team") is None  # deleting what is not there succeeds
    assert error_of(member.currentScopes).status_code == 403
    assert error_of(root.role, "team").status_code == 404
    assert error_of(root.updateRole, "team", {"description": "x", "scopes": []}).status_code == 404

    # Role ids may hold slashes and spaces.
    role_id = "repo:github.com/org/app:branch:main feature"
    root.createRole(role_id, {"description": "odd id", "scopes": ["thing"]})
    assert root.role(role_id)["roleId"] == role_id
    assert root.updateRole(role_id, {"description": "still odd", "scopes": []})["scopes"] == []
    root.deleteRole(role_id)
    assert error_of(root.role, role_id).status_code == 404


def test_cycles_and_bad_parameters_are_refused(server):
    root = server.client("auth")
    root.createRole("a", {"description": "a", "scopes": ["assume:b"]})
    cycle = error_of(root.createRole, "b", {"description": "b", "scopes": ["assume:a"]})
    assert (cycle.status_code, cycle.body["code"]) == (400, "InputError")
    root.createRole("b", {"description": "b", "scopes": ["thing"]})
    assert error_of(root.updateRole, "b", {"description": "b", "scopes": ["assume:a"]}).status_code == 400

    parameter_cycle = error_of(root.createRole, "p:*", {"description": "p", "scopes": ["assume:p:x<..>"]})
    assert parameter_cycle.status_code == 400
    two_parameters = error_of(root.createRole, "q:*", {"description": "q", "scopes": ["x<..>y<..>"]})
    assert two_parameters.status_code == 400
    stars = error_of(root.createRole, "r", {"description": "r", "scopes": ["x:**"]})
    assert stars.status_code == 400


def test_a_caller_grants_only_scopes_it_holds(server):
    root = server.client("auth")
    root.createRole("helper", {"description": "h", "scopes": ["thing:helper"]})
    root.createRole("target", {"description": "t", "scopes": ["thing:held-by-role:*", "assume:helper"]})
    admin_scopes = ["auth:create-role:*", "auth:update-role:*", "thing:mine:*"]
    caller = client_with(server, "test/role-admin", admin_scopes)

    refused = error_of(caller.createRole, "new", {"description": "n", "scopes": ["thing:not-mine"]})
    assert refused.status_code == 403
    assert "thing:not-mine" in refused.body["message"]
    created = caller.createRole("new", {"description": "n", "scopes": ["thing:mine:x"]})
    assert created["scopes"] == ["thing:mine:x"]

    # An update needs only the scopes the role did not already grant, directly or via roles.
    keep = ["thing:held-by-role:x", "thing:helper", "thing:mine:y", "assume:helper"]
    assert caller.updateRole("target", {"description": "t", "scopes": keep})["scopes"] == keep
    assert caller.updateRole("target", {"description": "t", "scopes": []})["scopes"] == []
    refused = error_of(caller.updateRole, "target", {"description": "t", "scopes": ["thing:held-by-role:x"]})
    assert "thing:held-by-role:x" in refused.body["message"]


def test_role_listings_page_through_every_role(server):
    root = server.client("auth")
    names = [f"list:{i:02}" for i in range(7)]
    for name in names:
        root.createRole(name, {"description": name, "scopes": [f"thing:{name}"]})

    assert root.listRoleIds()["roleIds"] == names
    assert "continuationToken" not in root.listRoleIds()
    assert [r["roleId"] for r in root.listRoles()] == names
    assert root.listRoles()[0]["expandedScopes"] == ["assume:list:00", "thing:list:00"]

    for method, field in ((root.listRoleIds, "roleIds"), (root.listRoles2, "roles")):
        seen, query = [], {"limit": 3}
        while True:
            result = method(query=query)
            assert len(result[field]) <= 3
            seen += result[field]
            if "continuationToken" not in result:
                break
            query["continuationToken"] = result["continuationToken"]
        assert [r if isinstance(r, str) else r["roleId"] for r in seen] == names

    for token in ("FOOBAR", "@@something##"):
        bad = error_of(root.listRoleIds, query={"limit": 1, "continuationToken": token})
        assert (bad.status_code, bad.body["code"]) == (400, "InvalidRequestArguments")
