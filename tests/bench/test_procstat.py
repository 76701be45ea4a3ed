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
    tids: list[int] = []

    def sleeper() -> None:
        tids.append(threading.get_native_id())
        for _ in range(50):
            time.sleep(0.001)  # each sleep gives up the core: a voluntary switch
        slept.set()
        release.wait()  # alive while it is read: an ended thread's count goes with it

    thread = threading.Thread(target=sleeper)
    thread.start()
    try:
        assert slept.wait(10)
        threads = procstat.thread_context_switches(os.getpid())
        total = procstat.tree_context_switches(os.getpid())
    finally:
        release.set()
        thread.join()
    # The sleeper is read by its own id; other threads of this process (the
    # suite's, which may end at any moment) are no part of the reckoning.
    assert threads[tids[0]][0] >= 50
    assert threading.get_native_id() in threads
    # The sum is taken over every thread: at least the sleeper's and this one's.
    assert total[0] >= threads[tids[0]][0] + threads[threading.get_native_id()][0]


def test_a_childs_threads_are_counted_with_the_tree() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", "import time\nfor _ in range(40): time.sleep(0.001)\ninput()"],
        stdin=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 10
        while procstat.tree_context_switches(child.pid)[0] < 40 and time.monotonic() < deadline:
            time.sleep(0.01)
        child_threads = procstat.thread_context_switches(child.pid)
        assert sum(voluntary for voluntary, _ in child_threads.values()) >= 40
        # The tree read from this process holds the child's threads, by their own ids.
        tree = procstat.thread_context_switches(os.getpid())
        assert set(child_threads) <= set(tree)
        assert threading.get_native_id() in tree
    finally:
        child.communicate(b"\n", timeout=10)
