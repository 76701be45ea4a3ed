"""What task routes ask the notify service for: Taskcluster's reading of `notify.*` routes and `extra.notify`."""

from __future__ import annotations

import pytest

from cairn.consumers.notify.email_sender import SmtpServer, build_message
from cairn.domain.aggregate import acting_as
from cairn.domain.errors import Conflict
from cairn.domain.notify.model import Notification
from cairn.domain.notify.task_routes import decides_for, log_section, notifications_for, parse_route

ROOT = "https://cairn.example.org"


def status(state: str, reason: str | None = None) -> dict:
    runs = [] if state == "unscheduled" else [{"runId": 0, "state": state, "reasonResolved": reason}]
    return {"taskId": "T", "state": state, "runs": runs}


def definition(*routes: str, **extra: object) -> dict:
    return {
        "taskGroupId": "G",
        "routes": list(routes),
        "metadata": {"name": "build", "description": "d", "owner": "o@example.org", "source": "s"},
        "extra": extra,
    }


def asked(defn: dict, st: dict, tail: str | None = "last line") -> list:
    return notifications_for("task/T", 5, 0, defn, st, ROOT, lambda task_id, run_id: tail)


def test_routes_are_read_as_taskcluster_reads_them():
    route = parse_route("notify.email.a.b@example.org.on-failed")
    assert (route.kind, route.address, route.decider) == ("email", "a.b@example.org", "failed")
    assert parse_route("notify.pulse.project.topic.on-any").address == "project.topic"
    assert parse_route("notify.matrix-room.!r:example.org.on-resolved").address == "!r:example.org"
    for ignored in ("index.notify.email.x.on-failed", "notify.email.on-failed", "notify.sms.x.on-failed",
                    "notify.email.x.failed"):
        assert parse_route(ignored) is None


@pytest.mark.parametrize(
    ("decider", "state", "expected"),
    [
        ("failed", "failed", True), ("failed", "completed", False), ("completed", "completed", True),
        ("resolved", "exception", True), ("resolved", "running", False), ("any", "failed", True),
        ("any", "pending", False), ("defined", "unscheduled", True), ("defined", "pending", False),
        ("pending", "pending", True), ("running", "running", True), ("transition", "pending", True),
    ],
)
def test_which_events_notify(decider, state, expected):
    assert decides_for(decider, state) is expected


@pytest.mark.parametrize("reason", ["canceled", "deadline-exceeded"])
def test_cancelled_and_overdue_tasks_notify_nobody(reason):
    assert asked(definition("notify.email.a@example.org.on-exception"), status("exception", reason)) == []
    assert len(asked(definition("notify.email.a@example.org.on-exception"), status("exception", "malformed-payload"))) == 1


def test_ids_are_stable_per_event_and_route():
    defn = definition("notify.email.a@example.org.on-failed", "notify.email.b@example.org.on-failed")
    first, second = asked(defn, status("failed")), asked(defn, status("failed"))
    assert [n.notification_id for n in first] == [n.notification_id for n in second]
    assert len({n.notification_id for n in first}) == 2
    other_event = notifications_for("task/T", 6, 0, defn, status("failed"), ROOT, lambda *_: None)
    assert not {n.notification_id for n in other_event} & {n.notification_id for n in first}


def test_a_failed_tasks_mail_carries_its_log_and_a_completed_ones_does_not():
    (failed,) = asked(definition("notify.email.a@example.org.on-resolved"), status("failed"))
    assert failed.content["subject"] == "Task failed: build - T"
    assert failed.content["link"] == {"text": "Inspect Task", "href": f"{ROOT}/tasks/T"}
    assert f"]({ROOT}/tasks/groups/G)" in failed.content["content"]  # the UI's group page
    assert "last line" in failed.content["content"]
    (completed,) = asked(definition("notify.email.a@example.org.on-resolved"), status("completed"))
    assert "last line" not in completed.content["content"]
    assert failed.source == {"taskId": "T", "runId": 0, "state": "failed", "route": "notify.email.a@example.org.on-resolved"}


def test_a_log_holding_backticks_stays_inside_its_fence():
    section = log_section("a ``` b")
    assert section.endswith("\n````")


def test_extra_notify_is_rendered_with_json_e_and_a_broken_template_says_why():
    defn = definition(
        "notify.slack-channel.C1.on-failed", "notify.matrix-room.!r:x.on-failed",
        notify={"slackText": "${task.metadata.name} is ${status.state}", "matrixBody": {"$eval": "nope"},
                "matrixFormat": "org.matrix.custom.html", "matrixFormattedBody": "<b>${taskId}</b>",
                "slackUnfurlLinks": True},
    )
    slack, matrix = asked(defn, status("failed"))
    assert slack.content["text"] == "build is failed" and slack.content["unfurlLinks"] is True
    assert slack.content["blocks"][0]["text"]["text"] == "build is failed"
    assert matrix.content["body"].startswith("Error parsing custom message:")
    assert matrix.content["formattedBody"] == "<b>T</b>" and matrix.content["msgtype"] == "m.notice"


def test_a_pulse_route_publishes_the_status():
    (pulse,) = asked(definition("notify.pulse.a.b.on-completed"), status("completed"))
    assert pulse.content == {"routingKey": "a.b", "message": status("completed")}


def test_a_notification_ends_once():
    with acting_as("tests"):
        n = Notification(notification_id="n", channel="email", address="a@example.org", content={}, source={})
        n.attempt_failed("down", "2030-01-01T00:00:00.000Z")
        n.sent()
        with pytest.raises(Conflict):
            n.failed("late")
    assert (n.state, n.attempts) == ("sent", 2)


def test_smtp_urls():
    plain = SmtpServer.from_url("smtp://mail.example.org")
    assert (plain.port, plain.implicit_tls, plain.username) == (25, False, None)
    tls = SmtpServer.from_url("smtps://me%40x:p%3Ass@mail.example.org:2465")
    assert (tls.hostname, tls.port, tls.implicit_tls, tls.username, tls.password) == (
        "mail.example.org", 2465, True, "me@x", "p:ss")
    with pytest.raises(ValueError):
        SmtpServer.from_url("http://mail.example.org")


def test_the_mail_has_text_and_escaped_html_parts():
    message = build_message("cairn@x.org", "n1", {"address": "a@x.org", "subject": "S", "content": "*hi* <b>raw</b>"})
    text, html = (p.get_content() for p in message.iter_parts())
    assert text.startswith("*hi* <b>raw</b>")
    assert "<em>hi</em>" in html and "&lt;b&gt;raw&lt;/b&gt;" in html
    assert message["Message-ID"] == "<n1@cairn.notify>"


class _Reads:
    def __init__(self, artifacts: dict):
        self.artifacts = artifacts

    def artifact(self, task_id: str, run_id: int, name: str) -> dict | None:
        return self.artifacts.get(name)

    def object(self, name: str) -> dict | None:
        return {"finished": True, "blobKey": "objects/log"}


class _Blobs:
    def __init__(self, data: bytes):
        self.data = data

    def exists(self, key: str) -> bool:
        return True

    def chunks(self, key: str):
        return (self.data[i:i + 7] for i in range(0, len(self.data), 7))


def test_the_log_tail_follows_the_link_and_keeps_the_last_lines_and_bytes():
    from cairn.projections.notify.task_logs import TaskLogs

    reads = _Reads({
        "public/logs/live.log": {"present": True, "storageType": "link", "details": {"artifact": "public/logs/b.log"}},
        "public/logs/b.log": {"present": True, "storageType": "object", "details": {}},
    })
    logs = TaskLogs(reads, _Blobs("".join(f"line {i}\n" for i in range(1, 21)).encode()))
    assert logs.tail("T", 0, lines=3) == "line 18\nline 19\nline 20"
    assert logs.tail("T", 0, lines=3, max_bytes=10) == "19\nline 20"
    long_line = TaskLogs(reads, _Blobs(b"x" * 100 + b"end"))
    assert long_line.tail("T", 0, max_bytes=5) == "xxend"
    assert TaskLogs(_Reads({}), _Blobs(b"")).tail("T", 0) is None
