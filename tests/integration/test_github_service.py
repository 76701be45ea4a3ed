"""The github service's commands on a real store (SQLite and PostgreSQL): installations, builds,
deliveries and requests to GitHub, each idempotent."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from cairn.domain.aggregate import acting_as
from cairn.domain.errors import Conflict, InvalidInput, NotFound
from cairn.domain.timestamps import utcnow

OWNER = "octo-org"


@pytest.fixture
def github(runtime):
    with acting_as("github-tests"):
        yield runtime.github.service


def deliver(github, event: str, body: dict) -> bool:
    return github.record_delivery(str(uuid.uuid4()), event, body, utcnow())[1]


def installation(action: str, installation_id: int = 7, selection: str | None = "selected", **extra) -> dict:
    body = {"action": action, "installation": {"id": installation_id, "account": {"login": OWNER}}, **extra}
    if selection:
        body["installation"]["repository_selection"] = selection
    return body


def repos(*names: str) -> list[dict]:
    return [{"id": i, "name": name, "full_name": f"{OWNER}/{name}"} for i, name in enumerate(names)]


def from_repository(name: str, installation_id: int = 7) -> dict:
    return {"repository": {"name": name, "owner": {"login": OWNER}}, "installation": {"id": installation_id}}


def test_an_installation_follows_what_github_says_of_it(github):
    assert deliver(github, "installation", installation("created", repositories=repos("app", "docs")))
    assert github.installation_id(OWNER) == 7
    assert [github.repository_installed(OWNER, r) for r in ("app", "docs", "site")] == [True, True, False]

    deliver(github, "installation_repositories",
            installation("added", repositories_added=repos("site"), repositories_removed=repos("docs")))
    assert [github.repository_installed(OWNER, r) for r in ("app", "docs", "site")] == [True, False, True]

    deliver(github, "installation", installation("suspend"))
    assert github.installation_id(OWNER) is None and not github.repository_installed(OWNER, "app")
    deliver(github, "push", from_repository("other"))  # a late delivery does not bring it back
    assert github.installation_id(OWNER) is None
    deliver(github, "installation", installation("unsuspend"))  # lists no repositories: those known stay
    assert [github.repository_installed(OWNER, r) for r in ("app", "docs", "site")] == [True, False, True]

    deliver(github, "push", from_repository("other"))  # a delivery through it shows it covers `other`
    assert github.repository_installed(OWNER, "other")
    deliver(github, "installation", installation("deleted", installation_id=6))  # an older installation's
    assert github.installation_id(OWNER) == 7
    deliver(github, "installation", installation("deleted"))
    assert github.installation_id(OWNER) is None

    deliver(github, "installation", installation("created", installation_id=8, selection="all", repositories=[]))
    assert github.installation_id("OCTO-ORG") == 8 and github.repository_installed(OWNER, "anything")


def test_deliveries_alone_tell_an_installation_and_its_repositories(github, runtime):
    version = None
    for name in ("app", "app", "docs"):
        deliver(github, "pull_request", from_repository(name, 9))
        found = github.installation(OWNER)
        assert found.version != version or name == "app"  # the second `app` records nothing
        version = found.version
    assert github.installation(OWNER).version == 2
    assert github.repository_installed(OWNER, "docs") and not github.repository_installed(OWNER, "site")
    deliver(github, "pull_request", from_repository("site", 10))  # a newer installation replaces it
    assert github.installation_id(OWNER) == 10
    assert not github.repository_installed(OWNER, "app") and github.repository_installed(OWNER, "site")


def test_a_delivery_is_recorded_once_and_handled_once(github):
    delivery = str(uuid.uuid4())
    recorded, new = github.record_delivery(delivery, "ping", {"zen": "Keep it simple."}, utcnow())
    assert new and recorded.installation_id is None
    again, new = github.record_delivery(delivery, "ping", {"zen": "other"}, utcnow())
    assert not new and again.body == {"zen": "Keep it simple."}
    assert github.record_delivery_handled(delivery, "skipped", {"reason": "a ping builds nothing"})
    assert not github.record_delivery_handled(delivery, "created")
    assert github.delivery(delivery).outcome == "skipped"
    with pytest.raises(NotFound):
        github.record_delivery_handled(str(uuid.uuid4()), "created")


def test_a_build_is_created_once_and_moves_through_its_states(github, runtime):
    now = utcnow()
    fields = dict(organization=OWNER, repository="app", sha="a" * 40, event_type="push", event_id="x",
                  installation_id=7, branch="main")
    build = github.record_build("tg-1", created=now, **fields)
    assert github.record_build("tg-1", created=now + timedelta(seconds=5), **fields).version == build.version
    with pytest.raises(Conflict):
        github.record_build("tg-1", created=now, **{**fields, "sha": "b" * 40})

    assert github.record_build_tasks_created("tg-1", ["t1", "t2"], ["statuses"])
    assert not github.record_build_tasks_created("tg-1", ["t1", "t2"], ["statuses"])
    assert github.set_build_state("tg-1", "failure", now)
    assert not github.set_build_state("tg-1", "failure", now)
    assert github.set_build_state("tg-1", "pending", now)  # rerun
    assert github.cancel_build("tg-1", now)
    assert github.build("tg-1").state == "cancelled"
    with pytest.raises(InvalidInput):
        github.set_build_state("tg-1", "done", now)
    with pytest.raises(NotFound):
        github.set_build_state("tg-2", "success", now)
    states = [s["state"] for s in runtime.github.reads.build_states("tg-1")]
    assert states == ["pending", "failure", "pending", "cancelled"]


def test_requests_to_github_end_once_and_leave_the_to_do_list(github, runtime):
    with pytest.raises(NotFound):
        github.request_status(OWNER, "app", "a" * 40, {"state": "success"}, {"api": "x"})
    deliver(github, "installation", installation("created", repositories=repos("app")))
    reads = runtime.github.reads
    late = "9999-12-31T00:00:00.000Z"
    status = github.request_status(OWNER, "app", "a" * 40, {"state": "success"}, {"build": "tg"}, request_id="s1")
    assert github.request_status(OWNER, "app", "a" * 40, {}, {}, request_id="s1").params == {"state": "success"}
    comment = github.request_comment(OWNER, "app", 3, "hi", {"api": "x"})
    assert sorted(reads.due_requests(late, 10)) == sorted([status.request_id, comment.request_id])

    assert github.record_request_attempt_failed("s1", "502", "2099-01-01T00:00:00.000Z")
    assert reads.due_requests("2098-01-01T00:00:00.000Z", 10) == [comment.request_id]
    assert reads.next_request_due() <= "2099-01-01T00:00:00.000Z"
    assert github.record_request_posted("s1", {"id": 1})
    assert not github.record_request_failed("s1", "too late")
    assert github.record_request_failed(comment.request_id, "404")
    assert reads.due_requests(late, 10) == [] and reads.next_request_due() is None
    assert github.request("s1").attempts == 2 and github.request("s1").state == "posted"
