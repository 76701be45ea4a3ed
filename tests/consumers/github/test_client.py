"""The GitHub App client against the fake GitHub: app JWTs, cached installation tokens, retries."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cairn.consumers.github.client import GithubApp, GithubError, GithubUnavailable, RetryPolicy
from tests.acceptance.github_fake import APP_ID, PRIVATE_KEY, FakeGithub, generate_private_key

FAST = RetryPolicy(attempts=3, first=0.01, ceiling=0.05)


@pytest.fixture(scope="module")
def github() -> Iterator[FakeGithub]:
    fake = FakeGithub().start()
    repo = fake.repo("octo", "hello", default_branch="trunk")
    sha = repo.commit({".taskcluster.yml": "version: 1\n", "dir/a b.txt": "spaced"}, branch="trunk")
    repo.refs["v1.0"] = sha
    repo.collaborators.add("alice")
    yield fake
    fake.stop()


@pytest.fixture
def app(github: FakeGithub) -> Iterator[GithubApp]:
    app = GithubApp(APP_ID, PRIVATE_KEY, github.url, retry=FAST)
    yield app
    app.close()


def test_reads_files_refs_and_collaborators(github: FakeGithub, app: GithubApp) -> None:
    inst = app.installation(7)
    assert inst.default_branch("octo", "hello") == "trunk"
    sha = inst.commit_sha("octo", "hello", "trunk")
    assert sha and inst.commit_sha("octo", "hello", "v1.0") == sha
    assert inst.commit_sha("octo", "hello", "nope") is None
    assert inst.file("octo", "hello", ".taskcluster.yml", sha) == "version: 1\n"
    assert inst.file("octo", "hello", "dir/a b.txt", "trunk") == "spaced"
    assert inst.file("octo", "hello", "missing.yml", sha) is None
    assert inst.is_collaborator("octo", "hello", "alice")
    assert not inst.is_collaborator("octo", "hello", "mallory")


def test_installation_tokens_are_cached(github: FakeGithub, app: GithubApp) -> None:
    before = len(github.recorded("POST", "/app/installations/8/"))
    inst = app.installation(8)
    for _ in range(3):
        inst.default_branch("octo", "hello")
    assert len(github.recorded("POST", "/app/installations/8/")) == before + 1


def test_a_jwt_signed_by_another_key_is_refused(github: FakeGithub) -> None:
    stranger = GithubApp(APP_ID, generate_private_key(), github.url, retry=FAST)
    with pytest.raises(GithubError) as refused:
        stranger.installation(9).default_branch("octo", "hello")
    assert refused.value.status == 401


def test_server_errors_and_rate_limits_are_retried(github: FakeGithub, app: GithubApp) -> None:
    inst = app.installation(7)
    github.fail("POST", "/repos/octo/hello/statuses/", 502)
    github.fail("POST", "/repos/octo/hello/statuses/", 403, headers={"x-ratelimit-remaining": "0",
                                                                    "x-ratelimit-reset": "0"})
    github.fail("POST", "/repos/octo/hello/statuses/", 429, headers={"retry-after": "0"})
    before = len(github.statuses("octo", "hello"))
    with pytest.raises(GithubUnavailable):
        inst.create_status("octo", "hello", "abc", {"state": "pending", "context": "x"})
    inst.create_status("octo", "hello", "abc", {"state": "pending", "context": "x"})
    assert len(github.statuses("octo", "hello")) == before + 1


def test_a_refusal_is_not_retried(github: FakeGithub, app: GithubApp) -> None:
    inst = app.installation(7)
    before = len(github.recorded("POST", "/statuses/"))
    with pytest.raises(GithubError) as refused:
        inst.create_status("octo", "hello", "abc", {"state": "bogus"})
    assert refused.value.status == 422
    assert len(github.recorded("POST", "/statuses/")) == before + 1
