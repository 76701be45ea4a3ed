"""The notify consumers killed mid-stream (SIGKILL) and started again: every mail goes, none twice.

Mails flow to a real SMTP server while tasks resolve; then the SMTP server
stops, more tasks resolve, and the Cairn process is killed while they do —
the task notifier mid-way through the log, some notifications requested and
failing, some not yet requested. A new process on the same database and a
running SMTP server then deliver every mail that was not delivered, and no
mail that was.
"""

from __future__ import annotations

import signal
import threading
import time

import taskcluster

from tests.acceptance.notify_fakes import SmtpSink, wait_until
from tests.acceptance.queue_helpers import task_definition
from tests.conftest import free_port
from tests.integration.cairn_process import root_options, start_server, stop_server

QUEUE_ID = "cairn-test/notify-crash"


def fail_tasks(root_url: str, first: int, count: int, done: list[int], stop: threading.Event) -> None:
    queue = taskcluster.Queue(root_options(root_url))
    for i in range(first, first + count):
        if stop.is_set():
            return
        task_id = taskcluster.slugId()
        try:
            queue.createTask(task_id, task_definition(
                taskQueueId=QUEUE_ID, routes=[f"notify.email.user{i}@example.org.on-failed"]))
            claim = queue.claimWork(QUEUE_ID, {"workerGroup": "g", "workerId": "w", "tasks": 1})["tasks"][0]
            queue.reportFailed(claim["status"]["taskId"], str(claim["runId"]))
        except Exception:  # the kill: what was acknowledged before it is what counts
            return
        done.append(i)


def test_killed_and_restarted_notify_sends_every_mail_once(database_url, tmp_path):
    smtp = SmtpSink(free_port())
    smtp.start()
    port = free_port()
    root_url = f"http://127.0.0.1:{port}"
    server = start_server(database_url, tmp_path, port, smtp_url=smtp.url)
    done: list[int] = []
    stop = threading.Event()
    try:
        fail_tasks(root_url, 0, 5, done, stop)
        assert len(smtp.wait_for(5)) == 5, "mails before the SMTP server went down"
        smtp.stop()

        load = threading.Thread(target=fail_tasks, args=(root_url, 5, 30, done, stop), daemon=True)
        load.start()
        wait_until(lambda: len(done) >= 15, timeout=30)
        server.send_signal(signal.SIGKILL)
        server.wait(10)
        stop.set()
        load.join(30)
        assert 15 <= len(done) < 35, "the kill did not land mid-stream"

        smtp.start()
        server = start_server(database_url, tmp_path, port, smtp_url=smtp.url)
        expected = {f"user{i}@example.org" for i in done}
        wait_until(lambda: expected <= {a for m in smtp.mails for a in m.recipients}, timeout=60)
        time.sleep(1.5)  # anything sent twice would arrive by now
    finally:
        stop_server(server)
        smtp.stop()
    recipients = [a for m in smtp.mails for a in m.recipients]
    assert expected <= set(recipients)
    twice = sorted({a for a in recipients if recipients.count(a) > 1})
    assert twice == []
