"""The web UI's GitHub page: the most recent builds, for a visitor allowed to list them."""

from __future__ import annotations

import httpx
import taskcluster

from cairn.domain.aggregate import acting_as
from cairn.domain.timestamps import utcnow
from tests.acceptance.test_web_pages import signed_in


def test_the_github_page_lists_recent_builds_and_needs_the_list_scope(server, runtime):
    group = taskcluster.slugId()
    with acting_as("github-tests"):
        runtime.github.service.record_build(
            group, "octo-org", "app", "a" * 40, "pull_request.opened", "2b5ce0a0-7b0c-11e9-8f0b-0e6e0e6b4e6f", 1,
            utcnow(), pull_request_number=12, branch="fix",
        )
    page = signed_in(server).get("/github")
    assert page.status_code == 200
    assert f'<a href="/tasks/groups/{group}">{group}</a>' in page.text
    assert "octo-org/app" in page.text and "#12" in page.text and "pull_request.opened" in page.text
    assert "<code>aaaaaaaaaaaa</code>" in page.text

    anonymous = httpx.Client(base_url=server.root_url)
    response = anonymous.get("/github")
    assert response.status_code == 403 and "Not allowed" in response.text
    assert 'href="/github"' in anonymous.get("/").text
