"""Takes the README's screenshots of the web UI: a demo group run by a real worker, in headless Chromium.

Run from the repository, with Chromium installed: ``.venv/bin/python docs/screenshots/take.py``.
"""

from __future__ import annotations

import pathlib
import socket
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import taskcluster  # noqa: E402

from cairn.runtime import Runtime  # noqa: E402
from tests.acceptance.browser import open_browser, sign_in  # noqa: E402
from tests.acceptance.queue_helpers import task_definition  # noqa: E402
from tests.acceptance.test_worker import WorkerProcess  # noqa: E402
from tests.conftest import ROOT_TOKEN, LiveServer, test_settings  # noqa: E402

OUT = pathlib.Path(__file__).parent
QUEUE = "demo/linux"
COLOURS = (
    "printf '\\033[1;34m==>\\033[0m fetching sources\\n'; sleep 0.3; "
    "printf '\\033[32m✔\\033[0m 214 files checked\\n'; "
    "printf '\\033[33mwarning:\\033[0m unused import in cairn/cli.py:12\\n'; "
    "for i in 1 2 3 4 5 6 7 8; do printf 'test_case_%s ... \\033[32mok\\033[0m\\n' $i; sleep 0.2; done; "
    "printf '\\033[31mFAIL\\033[0m test_timeouts (expected 3, got 4)\\n'; sleep 60"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def create(queue, group, name, command, needs=()):
    task_id = taskcluster.slugId()
    definition = task_definition(taskQueueId=QUEUE, taskGroupId=group, dependencies=list(needs),
                                 payload={"command": [["sh", "-c", command]]})
    definition["metadata"]["name"] = name
    queue.createTask(task_id, definition)
    return task_id


def main() -> None:
    tmp = pathlib.Path(tempfile.mkdtemp())
    runtime = Runtime(test_settings(f"sqlite:///{tmp / 'cairn.db'}", tmp, root_url=f"http://127.0.0.1:{free_port()}"))
    server = LiveServer(runtime)
    server.server.config.timeout_graceful_shutdown = 0.1
    server.start()
    queue = server.client("queue")
    group = taskcluster.slugId()
    decision = create(queue, group, "decision", "echo planning 19 tasks")
    lint = create(queue, group, "lint", "echo lint ok", [decision])
    builds = {os: create(queue, group, f"build {os}", "sleep 1" if os != "windows" else "exit 1", [decision])
              for os in ("linux", "macos", "windows", "android")}
    suite = create(queue, group, "test suite (linux)", COLOURS, [builds["linux"], lint])
    for os in ("linux", "macos", "windows", "android"):
        for kind in ("unit", "integration"):
            create(queue, group, f"{kind} tests {os}", "sleep 1", [builds[os]])
    for name in ("docs", "package", "sign", "upload", "notify"):
        create(queue, group, name, "sleep 1", [suite])
    worker = WorkerProcess(server, tmp / "worker", 3, QUEUE, None)
    try:
        deadline = time.monotonic() + 60
        while queue.status(suite)["status"]["state"] != "running" and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(5)
        queue.rerunTask(decision)
        time.sleep(1)
        for width, height in ((1280, 900), (360, 780)):
            browser = open_browser(max(width, 500), height)
            # Chromium's windows are at least 500 px wide: a phone's width is emulated.
            browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
                "width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 500,
            })
            try:
                sign_in(browser, server.root_url, "static/root", ROOT_TOKEN)
                shots = {
                    "group": f"/tasks/groups/{group}",
                    "task": f"/tasks/{suite}",
                    "log": f"/tasks/{suite}/runs/0/logs/live/public%2Flogs%2Flive.log",
                    "history": f"/tasks/{decision}/history?at=3",
                }
                if width > 400:
                    shots["graph"] = f"/tasks/groups/{group}?view=graph"
                for name, path in shots.items():
                    browser.get(server.root_url + path)
                    time.sleep(2.5)
                    browser.save_screenshot(str(OUT / f"{name}-{width}.png"))
            finally:
                browser.quit()
    finally:
        worker.terminate()
        server.stop()
        runtime.close()


if __name__ == "__main__":
    main()
