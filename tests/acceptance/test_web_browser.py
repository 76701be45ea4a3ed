"""The web UI in a real browser: headless Chromium on the pages of a live server, with a real worker.

What a person would check: a group's tasks change state on screen while the
worker runs them, without a reload; a task page shows runs and artifacts;
a running task's log appears as it is printed, in colour; the history shows
a task as it was; buttons appear only with the scopes to press them, and a
rerun pressed in the browser makes a new run.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
import taskcluster
from selenium.webdriver.common.by import By

from cairn.domain.queue.task import task_key
from tests.acceptance import browser as browsers
from tests.acceptance import test_worker as worker_tests
from tests.acceptance.browser import eventually, sign_in
from tests.acceptance.queue_helpers import claim_one, task_definition
from tests.acceptance.test_worker import resolved
from tests.conftest import ROOT_TOKEN

# Short claims and a server that stops at once, as the worker's own tests have them, in a
# deployment as Cairn makes by default: public, its anonymous role granting Taskcluster's public reads.
@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"claim_timeout": 3, "reaper_interval": 0.2, "anonymous_role": "public"}


server = worker_tests.server
start_worker = worker_tests.start_worker
browser = browsers.browser

META = task_definition()["metadata"]


def create(queue: Any, payload: Any, name: str, **overrides: Any) -> str:
    task_id = taskcluster.slugId()
    queue.createTask(task_id, task_definition(payload=payload, metadata={**META, "name": name}, **overrides))
    return task_id


def shown_states(driver: Any) -> dict[str, str]:
    rows = driver.execute_script(
        "return Array.from(document.querySelectorAll('tr[data-task]')).map(r => [r.dataset.task, r.dataset.state])"
    )
    return dict(rows)


def completed_task(server: Any) -> str:
    """A task run to completion through the API (no worker needed)."""
    queue = server.client("queue")
    task_id = create(queue, {"command": ["true"]}, "done already")
    claim = claim_one(queue)
    queue.reportCompleted(task_id, claim["runId"])
    return task_id


def test_a_group_of_20_tasks_updates_live_while_the_worker_runs_it(server, start_worker, browser):
    queue = server.client("queue")
    group = taskcluster.slugId()
    ids: list[str] = []
    for i in range(20):
        needs = [ids[(i - 1) // 2]] if i else []  # a binary tree: every task waits for its parent
        payload = {"command": [["sleep", "0.2"]]}
        ids.append(create(queue, payload, f"step {i:02d}", taskGroupId=group, dependencies=needs))
    sign_in(browser, server.root_url, "static/root", ROOT_TOKEN)
    browser.get(f"{server.root_url}/tasks/groups/{group}")
    assert shown_states(browser) == {t: queue.status(t)["status"]["state"] for t in ids}
    assert sorted(shown_states(browser).values()) == ["pending"] + ["unscheduled"] * 19
    browser.execute_script("window.notReloaded = true")

    start_worker()
    seen_completed = set()

    def all_completed() -> bool:
        states = shown_states(browser)
        seen_completed.add(sum(1 for s in states.values() if s == "completed"))
        return len(states) == 20 and set(states.values()) == {"completed"}

    eventually(all_completed, 90, "every task to show as completed")
    assert browser.execute_script("return window.notReloaded === true")
    assert len(seen_completed) >= 3, seen_completed  # it moved on screen, not just once at the end
    assert {queue.status(t)["status"]["state"] for t in ids} == {"completed"}
    summary = browser.find_element(By.CSS_SELECTOR, ".summary").text
    assert summary == "20 of 20 tasks resolved"

    browser.get(f"{server.root_url}/tasks/groups/{group}?view=graph")
    nodes = browser.find_elements(By.CSS_SELECTOR, ".graph a[data-task]")
    assert {n.get_attribute("data-task") for n in nodes} == set(ids)
    assert len(browser.find_elements(By.CSS_SELECTOR, ".graph .edges path")) == 19


def test_a_state_change_reaches_an_open_group_page_quickly(server, browser):
    queue = server.client("queue")
    group = taskcluster.slugId()
    task_id = create(queue, {"command": ["true"]}, "watched", taskGroupId=group)
    sign_in(browser, server.root_url, "static/root", ROOT_TOKEN)
    browser.get(f"{server.root_url}/tasks/groups/{group}")
    assert browser.execute_script("return typeof htmx.ajax") == "function"  # the shipped htmx refreshes the page
    time.sleep(0.5)  # the page's event stream connects
    claim = claim_one(queue)
    eventually(lambda: shown_states(browser)[task_id] == "running", 10, "running on the page")
    queue.reportCompleted(task_id, claim["runId"])
    changed = time.monotonic()
    eventually(lambda: shown_states(browser)[task_id] == "completed", 10, "completed on the page")
    delay = time.monotonic() - changed
    print(f"state change to page: {delay * 1000:.0f} ms")
    assert delay < 3


def test_the_task_page_shows_runs_and_artifacts(server, start_worker, browser):
    queue = server.client("queue")
    task_id = create(queue, {"command": [["sh", "-c", "echo hello from the task"]]}, "with a log")
    start_worker()
    resolved(queue, task_id)
    sign_in(browser, server.root_url, "static/root", ROOT_TOKEN)
    browser.get(f"{server.root_url}/tasks/{task_id}")
    run = browser.find_element(By.ID, "run-0")
    assert "completed" in run.find_element(By.CSS_SELECTOR, "h3").text
    assert "tests/w1" in run.text  # the worker
    links = {a.text: a.get_attribute("href") for a in run.find_elements(By.CSS_SELECTOR, ".artifacts a:not(.log-link)")}
    assert "public/logs/live.log" in links
    body = httpx.get(links["public/logs/live.log"], follow_redirects=True).text
    assert "hello from the task" in body
    assert browser.find_element(By.CSS_SELECTOR, ".yaml").text.count("hello from the task") == 1

    run.find_element(By.CSS_SELECTOR, ".log-link").click()  # the stored log, once the task is done
    eventually(lambda: "End of log" in browser.find_element(By.ID, "log-status").text, 15, "the whole stored log")
    assert "hello from the task" in browser.find_element(By.ID, "log-lines").text


def test_the_log_page_shows_a_running_tasks_output_as_printed_in_colour(server, start_worker, browser):
    queue = server.client("queue")
    script = "printf '\\033[31mred alert\\033[0m and <b>not bold</b>\\n'; echo second line; sleep 4; echo finished"
    task_id = create(queue, {"command": [["sh", "-c", script]]}, "colourful")
    start_worker()

    def log_listed() -> bool:
        status = queue.status(task_id)["status"]
        if status["state"] != "running":
            return False
        names = [a["name"] for a in queue.listArtifacts(task_id, 0)["artifacts"]]
        return "public/logs/live.log" in names

    eventually(log_listed, 30, "the live log of the running task")
    sign_in(browser, server.root_url, "static/root", ROOT_TOKEN)
    browser.get(f"{server.root_url}/tasks/{task_id}/runs/0/logs/live/public%2Flogs%2Flive.log")
    red = eventually(lambda: browser.find_elements(By.CSS_SELECTOR, "#log-lines span.ansi31"), 15, "the red line")
    assert red[0].text == "red alert"
    assert queue.status(task_id)["status"]["state"] == "running"  # shown while the task runs
    line = red[0].find_element(By.XPATH, "./ancestor::tr")
    number = int(line.get_attribute("id").removeprefix("L"))
    assert "red alert and <b>not bold</b>" in line.text  # escaped: shown as printed
    assert line.find_element(By.CSS_SELECTOR, "a").get_attribute("href").endswith(f"#L{number}")
    assert browser.find_element(By.CSS_SELECTOR, f"#L{number + 1} td.tx").text == "second line"
    eventually(lambda: "finished" in browser.find_element(By.ID, "log-lines").text, 30, "the last line")
    eventually(lambda: "End of log" in browser.find_element(By.ID, "log-status").text, 15, "the end of the log")
    assert browser.execute_script("return window.scrollY + window.innerHeight >= document.body.scrollHeight - 2")


def test_the_history_lists_events_in_order_and_shows_the_task_as_it_was(server, browser):
    task_id = completed_task(server)
    sign_in(browser, server.root_url, "static/root", ROOT_TOKEN)
    browser.get(f"{server.root_url}/tasks/{task_id}/history")
    items = browser.find_elements(By.CSS_SELECTOR, ".timeline li")
    versions = [int(i.get_attribute("data-version")) for i in items]
    assert versions == list(range(1, len(items) + 1)) and len(items) >= 3
    what = [i.find_element(By.CSS_SELECTOR, ".what").text for i in items]
    assert what[0] == "TaskDefined" and what[-1] == "TaskRunResolved", what
    assert all(i.find_element(By.CSS_SELECTOR, ".who").text == "static/root" for i in items)
    assert "completed" in browser.find_element(By.CSS_SELECTOR, ".as-of .state").text

    items[0].find_element(By.CSS_SELECTOR, "a").click()
    eventually(lambda: "As of version 1" in browser.find_element(By.CSS_SELECTOR, ".as-of h2").text, 10, "version 1")
    then = server.runtime.log.repository.get(task_key(task_id), version=1).status()
    assert browser.find_element(By.CSS_SELECTOR, ".as-of .state").text == then["state"] != "completed"


def test_a_client_without_rerun_scopes_sees_no_button_and_a_forged_rerun_is_refused(server, browser):
    task_id = completed_task(server)
    reader = server.client("auth").createClient("ui/reader", {
        "expires": taskcluster.stringDate(taskcluster.fromNow("1 day")),
        "description": "reads tasks",
        "scopes": ["queue:get-task:*", "queue:status:*", "queue:list-artifacts:*"],
    })
    sign_in(browser, server.root_url, "ui/reader", reader["accessToken"])
    browser.get(f"{server.root_url}/tasks/{task_id}")
    assert "completed" in browser.find_element(By.CSS_SELECTOR, "h1 .state").text
    assert browser.find_elements(By.CSS_SELECTOR, ".actions button") == []
    # The form the page would have shown, with this session's own token.
    browser.execute_script(
        """
        const form = document.createElement('form');
        form.method = 'post'; form.action = '/tasks/' + arguments[0] + '/rerun';
        const token = document.querySelector("form[action='/signout'] input[name=csrf]").cloneNode();
        form.appendChild(token); document.body.appendChild(form); form.submit();
        """,
        task_id,
    )
    eventually(lambda: browser.find_element(By.TAG_NAME, "h1").text == "Not allowed", 10, "the refusal")
    assert "queue:rerun-task" in browser.find_element(By.CSS_SELECTOR, "pre.message").text
    assert len(server.client("queue").status(task_id)["status"]["runs"]) == 1


# A deployment made without an anonymous role: the test grants it one scope, then shows what it allows.
@pytest.mark.parametrize("settings_overrides", [{"claim_timeout": 3, "reaper_interval": 0.2, "anonymous_role": ""}])
def test_an_anonymous_visitor_sees_what_the_anonymous_role_allows(server, browser):
    queue = server.client("queue")
    group = taskcluster.slugId()
    task_id = create(queue, {"command": ["true"]}, "public work", taskGroupId=group)
    browser.get(f"{server.root_url}/tasks/groups/{group}")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Not allowed"

    server.client("auth").createRole("anonymous", {"description": "what anyone may see", "scopes": [
        "queue:list-task-group:*",
    ]})
    browser.get(f"{server.root_url}/tasks/groups/{group}")
    assert shown_states(browser) == {task_id: "pending"}
    assert browser.find_elements(By.CSS_SELECTOR, "form[action='/signout']") == []
    browser.get(f"{server.root_url}/tasks/{task_id}")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Not allowed"
    browser.get(f"{server.root_url}/auth/clients")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Not allowed"


def test_rerun_pressed_in_the_browser_creates_a_new_run(server, browser):
    task_id = completed_task(server)
    sign_in(browser, server.root_url, "static/root", ROOT_TOKEN)
    browser.get(f"{server.root_url}/tasks/{task_id}")
    browser.find_element(By.CSS_SELECTOR, "button.action-rerun").click()
    eventually(lambda: browser.find_elements(By.ID, "run-1"), 10, "run 1 on the page")
    assert "pending" in browser.find_element(By.CSS_SELECTOR, "#run-1 h3").text
    runs = server.client("queue").status(task_id)["status"]["runs"]
    assert [r["reasonCreated"] for r in runs] == ["scheduled", "rerun"]
    assert browser.find_elements(By.CSS_SELECTOR, "button.action-rerun") == []  # pending: nothing to rerun
