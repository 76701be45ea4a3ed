"""The bench's readings of /proc: context switches of a process tree's threads."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

from bench import procstat


def test_every_thread_of_the_process_is_counted() -> None:
    slept, release = threading.Event(), threading.Event()

    def sleeper() -> None:
        for _ in range(50):
            time.sleep(0.001)  # each sleep gives up the core: a voluntary switch
        slept.set()
        release.wait()  # alive while it is read: an ended thread's count goes with it

    before = procstat.tree_context_switches(os.getpid())
    thread = threading.Thread(target=sleeper)
    thread.start()
    try:
        assert slept.wait(10)
        after = procstat.tree_context_switches(os.getpid())
    finally:
        release.set()
        thread.join()
    # This thread waited once or twice meanwhile: the rest are the sleeper's.
    assert after[0] - before[0] >= 50


def test_a_childs_threads_are_counted_with_the_tree() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", "import time\nfor _ in range(40): time.sleep(0.001)\ninput()"],
        stdin=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 10
        own = procstat.tree_context_switches(os.getpid())[0]
        while procstat.tree_context_switches(child.pid)[0] < 40 and time.monotonic() < deadline:
            time.sleep(0.01)
        child_count = procstat.tree_context_switches(child.pid)[0]
        assert child_count >= 40
        assert procstat.tree_context_switches(os.getpid())[0] >= own + child_count
    finally:
        child.communicate(b"\n", timeout=10)
