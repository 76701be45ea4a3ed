"""The notify service end to end: task routes and API calls to a real SMTP server and fakes of Slack and Matrix."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import taskcluster

from cairn.consumers.notify.delivery import Backoff
from tests.acceptance.notify_fakes import (
    MATRIX_ROOM,
    MATRIX_TOKEN,
    SLACK_TOKEN,
    UNKNOWN_SLACK_CHANNEL,
    ChatFake,
    SmtpSink,
    wait_until,
)
from tests.acceptance.queue_helpers import claim_one, task_definition
from tests.acceptance.storage_helpers import in_one_day
from tests.conftest import free_port

LOG_LINES = 1500


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    sink = SmtpSink(free_port())
    sink.start()
    yield sink
    sink.stop()


@pytest.fixture
def chat() -> Iterator[ChatFake]:
    fake = ChatFake()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def settings_overrides(smtp: SmtpSink, chat: ChatFake) -> dict[str, Any]:
    return {
        "smtp_url": smtp.url,
        "email_from": "cairn@example.org",
        "slack_token": SLACK_TOKEN,
        "slack_api_url": chat.base_url + "/slack/api/",
        "matrix_base_url": chat.base_url,
        "matrix_access_token": MATRIX_TOKEN,
        "matrix_user_id": "@cairn:example.org",
    }


def run_task(server: Any, outcome: str, routes: list[str], log: bool = True, **extra: Any) -> str:
    """A task with ``routes``, claimed, its log uploaded, then resolved as ``outcome``."""
    queue = server.client("queue")
    task_id = taskcluster.slugId()
    queue.createTask(task_id, task_definition(routes=routes, **extra))
    claim = claim_one(queue)
    worker = taskcluster.Queue({"rootUrl": server.root_url, "credentials": claim["credentials"], "maxRetries": 0})
    if log:
        created = worker.createArtifact(
            task_id, "0", "public/logs/live.log",
            {"storageType": "s3", "expires": in_one_day(), "contentType": "text/plain"},
        )
        text = "".join(f"log line {i}\n" for i in range(1, LOG_LINES + 1))
        assert httpx.put(created["putUrl"], content=text.encode(), headers={"Content-Type": "text/plain"}).is_success
    if outcome == "completed":
        worker.reportCompleted(task_id, "0")
    elif outcome == "failed":
        worker.reportFailed(task_id, "0")
    else:
        worker.reportException(task_id, "0", {"reason": "malformed-payload"})
    return task_id


def settled(server: Any, task_id: str, count: int) -> list[dict[str, Any]]:
    """The task's notifications, once ``count`` of them have ended."""
    reads = server.runtime.notify.reads

    def ended() -> list[dict[str, Any]] | None:
        found = reads.of_task(task_id)
        return found if len(found) >= count and all(n["state"] != "requested" for n in found) else None

    found = wait_until(ended)
    assert found, reads.of_task(task_id)
    return found


def test_a_failed_task_mails_its_on_failed_and_on_resolved_addresses_once(server, smtp):
    routes = [
        "notify.email.fails@example.org.on-failed",
        "notify.email.passes@example.org.on-completed",
        "notify.email.all@example.org.on-resolved",
    ]
    task_id = run_task(server, "failed", routes, metadata={
        "name": "nightly build", "description": "d", "owner": "o@example.org", "source": "https://example.org/s",
    })
    states = {n["address"]: n["state"] for n in settled(server, task_id, 2)}
    assert states == {"fails@example.org": "sent", "all@example.org": "sent"}

    (mail,) = smtp.to("fails@example.org")
    assert mail.subject == f"Task failed: nightly build - {task_id}"
    text = mail.part("text/plain")
    assert "nightly build" in text and "**Status:** failed" in text
    assert f"{server.root_url}/tasks/{task_id}" in text
    assert f"log line {LOG_LINES}\n" in text and f"log line {LOG_LINES - 999}\n" in text
    assert f"log line {LOG_LINES - 1000}\n" not in text
    html = mail.part("text/html")
    assert f'href="{server.root_url}/tasks/{task_id}"' in html and "Inspect Task" in html
    assert mail.message["From"] == "cairn@example.org"
    assert len(smtp.to("all@example.org")) == 1
    assert smtp.to("passes@example.org") == []


def test_cairn_history_shows_what_was_sent_to_whom(server, smtp):
    from tests.acceptance.test_cli import Cli, cli_env

    task_id = run_task(server, "failed", ["notify.email.fails@example.org.on-failed"], log=False)
    (notification,) = settled(server, task_id, 1)
    events = Cli(cli_env(server)).json("history", "notification", notification["notificationId"])["events"]
    assert [(e["type"], e["clientId"]) for e in events] == [
        ("NotificationRequested", "cairn/notify"), ("NotificationSent", "cairn/notify")]
    requested = events[0]["data"]
    assert requested["channel"] == "email" and requested["address"] == "fails@example.org"
    assert requested["source"]["taskId"] == task_id and requested["source"]["state"] == "failed"

    cli = Cli(cli_env(server))
    (listed,) = cli.json("notifications", "--task", task_id)["notifications"]
    assert (listed["address"], listed["state"], listed["attempts"]) == ("fails@example.org", "sent", 1)
    assert cli.json("notifications")["notifications"] == []  # none failed
    assert "fails@example.org" in cli.run("notifications", "--task", task_id).stdout


def test_a_completed_task_mails_on_completed_and_on_resolved_without_its_log(server, smtp):
    routes = ["notify.email.fails@example.org.on-failed", "notify.email.passes@example.org.on-completed",
              "notify.email.all@example.org.on-resolved"]
    task_id = run_task(server, "completed", routes)
    assert len(settled(server, task_id, 2)) == 2
    (mail,) = smtp.to("passes@example.org")
    assert "log line" not in mail.part("text/plain")
    assert len(smtp.to("all@example.org")) == 1
    assert smtp.to("fails@example.org") == []


def test_extra_notify_templates_are_rendered_with_json_e(server, smtp):
    extra = {"notify": {"email": {
        "subject": {"$eval": "'Build ' + status.state + ' for ' + task.metadata.owner"},
        "content": "Task ${taskId} on ${rootUrl}",
        "link": {"text": "See it", "href": "${rootUrl}/custom/${status.taskId}"},
    }}}
    task_id = run_task(server, "completed", ["notify.email.me@example.org.on-completed"], log=False, extra=extra)
    settled(server, task_id, 1)
    (mail,) = smtp.to("me@example.org")
    assert mail.subject == "Build completed for tests@example.com"
    assert f"Task {task_id} on {server.root_url}" in mail.part("text/plain")
    assert f"{server.root_url}/custom/{task_id}" in mail.part("text/html")


def test_the_email_api_sends_html_and_text_parts(server, smtp):
    notify = server.client("notify")
    notify.email({
        "address": "someone@example.org", "subject": "Hello", "content": "Some **bold** news\n\n<script>x</script>",
        "link": {"text": "Open", "href": "https://example.org/open"}, "replyTo": "team@example.org",
    })
    (mail,) = wait_until(lambda: smtp.to("someone@example.org"))
    assert mail.subject == "Hello"
    assert mail.message["Reply-To"] == "team@example.org"
    assert mail.message.get_content_type() == "multipart/alternative"
    assert "Some **bold** news" in mail.part("text/plain")
    assert "https://example.org/open" in mail.part("text/plain")
    html = mail.part("text/html")
    assert "<strong>bold</strong>" in html and "<script>" not in html and 'href="https://example.org/open"' in html


def test_a_denylisted_address_receives_nothing(server, smtp):
    notify = server.client("notify")
    address = {"notificationType": "email", "notificationAddress": "blocked@example.org"}
    notify.addDenylistAddress(address)
    notify.addDenylistAddress(address)  # harmless to repeat
    assert notify.listDenylist()["addresses"] == [address]

    with pytest.raises(taskcluster.TaskclusterRestFailure) as refused:
        notify.email({"address": "blocked@example.org", "subject": "s", "content": "c"})
    assert refused.value.status_code == 400 and refused.value.body["code"] == "DenylistedAddress"

    task_id = run_task(server, "failed", ["notify.email.blocked@example.org.on-failed"], log=False)
    (skipped,) = settled(server, task_id, 1)
    assert skipped["state"] == "skipped" and skipped["lastError"] == "denylisted"

    notify.deleteDenylistAddress(address)
    notify.deleteDenylistAddress(address)  # not listed: no error
    assert notify.listDenylist()["addresses"] == []
    notify.email({"address": "blocked@example.org", "subject": "now", "content": "allowed"})
    (mail,) = wait_until(lambda: smtp.to("blocked@example.org"))
    assert mail.subject == "now"


def test_the_denylist_is_paged(server):
    notify = server.client("notify")
    for i in range(5):
        notify.addDenylistAddress({"notificationType": "pulse", "notificationAddress": f"key.{i}"})
    first = notify.listDenylist(query={"limit": 3})
    second = notify.listDenylist(query={"limit": 3, "continuationToken": first["continuationToken"]})
    assert [a["notificationAddress"] for a in first["addresses"] + second["addresses"]] == [f"key.{i}" for i in range(5)]
    assert "continuationToken" not in second


def test_notify_scopes_are_taskclusters(server):
    from tests.acceptance.storage_helpers import client_with_scopes

    notify = client_with_scopes(server, "notify", "notify:email:me@example.org")
    notify.email({"address": "me@example.org", "subject": "s", "content": "c"})
    with pytest.raises(taskcluster.TaskclusterRestFailure) as refused:
        notify.email({"address": "other@example.org", "subject": "s", "content": "c"})
    assert refused.value.body["code"] == "InsufficientScopes"
    with pytest.raises(taskcluster.TaskclusterRestFailure) as refused:
        notify.listDenylist()
    assert refused.value.body["code"] == "InsufficientScopes"


def test_mail_waits_while_the_smtp_server_is_down_and_each_goes_once_when_it_is_back(server, smtp):
    server.runtime.notify.delivery.backoff = Backoff(first=0.2, ceiling=0.5)
    smtp.stop()
    notify = server.client("notify")
    addresses = [f"pending{i}@example.org" for i in range(5)]
    for address in addresses:
        notify.email({"address": address, "subject": "while down", "content": "c"})
    task_id = run_task(server, "failed", ["notify.email.task@example.org.on-failed"], log=False)
    reads = server.runtime.notify.reads

    def retried_twice() -> list[dict[str, Any]]:
        return [n for n in reads.in_state("requested") if n["attempts"] >= 2]

    retried = wait_until(lambda: len(retried_twice()) == 6 and retried_twice())
    assert retried and len(retried) == 6 and all("unavailable" in n["lastError"] for n in retried)
    assert smtp.mails == []

    smtp.start()
    settled(server, task_id, 1)
    wait_until(lambda: not reads.in_state("requested"))
    assert sorted(a for m in smtp.mails for a in m.recipients) == sorted([*addresses, "task@example.org"])


def test_an_address_denylisted_while_its_mail_waits_gets_nothing(server, smtp):
    server.runtime.notify.delivery.backoff = Backoff(first=0.2, ceiling=0.5)
    smtp.stop()
    notify = server.client("notify")
    notify.email({"address": "late@example.org", "subject": "s", "content": "c"})
    reads = server.runtime.notify.reads
    assert wait_until(lambda: [n for n in reads.in_state("requested") if n["attempts"] >= 1])
    notify.addDenylistAddress({"notificationType": "email", "notificationAddress": "late@example.org"})
    smtp.start()
    (skipped,) = wait_until(lambda: reads.in_state("skipped"))
    assert skipped["address"] == "late@example.org" and skipped["lastError"] == "denylisted"
    assert smtp.mails == []


def test_a_refused_recipient_is_a_recorded_permanent_failure(server, smtp, chat):
    notify = server.client("notify")
    notify.slack({"channelId": UNKNOWN_SLACK_CHANNEL, "text": "to nowhere"})
    reads = server.runtime.notify.reads
    (failed,) = wait_until(lambda: reads.in_state("failed"))
    assert failed["channel"] == "slack-channel" and "channel_not_found" in failed["lastError"]
    assert failed["attempts"] == 1
    history = server.runtime.log.get(f"notification/{failed['notificationId']}")
    assert history.state == "failed"
    from tests.acceptance.test_cli import Cli, cli_env

    (listed,) = Cli(cli_env(server)).json("notifications", "--state", "failed")["notifications"]
    assert listed["notificationId"] == failed["notificationId"] and "channel_not_found" in listed["lastError"]


def test_slack_and_matrix_receive_task_and_api_messages(server, chat):
    notify = server.client("notify")
    notify.slack({"channelId": "C0123", "text": "hello slack", "blocks": [{"type": "divider"}]})
    notify.matrix({"roomId": MATRIX_ROOM, "body": "hello matrix", "format": "org.matrix.custom.html",
                   "formattedBody": "<b>hello</b>", "msgtype": "m.text"})
    task_id = run_task(server, "failed", ["notify.slack-channel.C0123.on-failed",
                                          f"notify.matrix-room.{MATRIX_ROOM}.on-failed"],
                       log=False, metadata={"name": "chatty", "description": "d", "owner": "o@example.org",
                                            "source": "https://example.org/s"})
    settled(server, task_id, 2)
    wait_until(lambda: len(chat.slack) >= 2 and len(chat.matrix) >= 2)
    api_slack, task_slack = sorted(chat.slack, key=lambda m: m["text"] != "hello slack")
    assert api_slack == {"channel": "C0123", "text": "hello slack", "blocks": [{"type": "divider"}],
                         "unfurl_links": False, "unfurl_media": False}
    assert task_slack["channel"] == "C0123" and "chatty" in task_slack["text"] and "_failed_" in task_slack["text"]
    assert task_slack["blocks"][0]["text"]["text"] == task_slack["text"]
    api_matrix, task_matrix = sorted(chat.matrix, key=lambda m: m["body"] != "hello matrix")
    assert {k: api_matrix[k] for k in ("body", "format", "formatted_body", "msgtype")} == {
        "body": "hello matrix", "format": "org.matrix.custom.html", "formatted_body": "<b>hello</b>", "msgtype": "m.text"}
    assert task_matrix["body"] == f"'chatty' resolved as 'failed': {server.root_url}/tasks/{task_id}"
    assert task_matrix["msgtype"] == "m.notice"
    assert len(chat.slack) == 2 and len(chat.matrix) == 2


def test_a_cancelled_task_notifies_nobody(server, smtp):
    queue = server.client("queue")
    task_id = taskcluster.slugId()
    queue.createTask(task_id, task_definition(routes=["notify.email.x@example.org.on-exception"]))
    queue.cancelTask(task_id)
    other = run_task(server, "exception", ["notify.email.y@example.org.on-exception"], log=False)
    settled(server, other, 1)
    assert smtp.to("x@example.org") == [] and len(smtp.to("y@example.org")) == 1
    assert server.runtime.notify.reads.of_task(task_id) == []
