"""What the kernel says about a process tree and the machine: CPU time and resident memory, from /proc.

A server's CPU is its own user + system time, its reaped children's, and
that of every live descendant, so a server that forks workers is measured
whole. The machine's busy time (all CPUs, minus idle and iowait) shows what
else ran meanwhile: the database, the load generator, other people's work.
"""

from __future__ import annotations

import os
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str]:
    # The command name is in parentheses and may hold spaces: split after it.
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def descendants(pid: int) -> list[int]:
    """pid and every live process below it."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            parent = int(_stat_fields(int(entry.name))[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU of pid, its reaped children and its live descendants."""
    total = 0
    for index, member in enumerate(descendants(pid)):
        try:
            fields = _stat_fields(member)
        except OSError:
            continue  # exited between the scan and the read
        # fields[11:13] utime, stime; fields[13:15] cutime, cstime (reaped children)
        total += int(fields[11]) + int(fields[12])
        if index == 0:
            total += int(fields[13]) + int(fields[14])
    return total / TICK


def thread_context_switches(pid: int) -> dict[int, tuple[int, int]]:
    """(voluntary, involuntary) context switches of every live thread of pid and its live descendants, by thread id.

    A thread gives up its core voluntarily when it waits: for the GIL held by
    another thread, for a lock, a socket or the database. In a server whose
    threads share one interpreter most of those waits are for the GIL, and
    each costs a futex call and a switch in and out of the kernel.
    """
    counts: dict[int, tuple[int, int]] = {}
    for member in descendants(pid):
        try:
            tasks = os.listdir(f"/proc/{member}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                status = Path(f"/proc/{member}/task/{task}/status").read_text()
            except OSError:
                continue  # ended between the listing and the read
            voluntary = involuntary = 0
            for line in status.splitlines():
                if line.startswith("voluntary_ctxt_switches:"):
                    voluntary = int(line.split()[1])
                elif line.startswith("nonvoluntary_ctxt_switches:"):
                    involuntary = int(line.split()[1])
            counts[int(task)] = (voluntary, involuntary)
    return counts


def tree_context_switches(pid: int) -> tuple[int, int]:
    """(voluntary, involuntary) context switches of every live thread of pid and its live descendants.

    A thread that ended between two readings takes its count with it (the
    server's threads are long-lived: request threads, followers, listeners).
    """
    counts = thread_context_switches(pid).values()
    return sum(voluntary for voluntary, _ in counts), sum(involuntary for _, involuntary in counts)


def tree_rss_bytes(pid: int) -> int:
    """VmRSS of pid and its live descendants."""
    total = 0
    for member in descendants(pid):
        try:
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
                    break
        except OSError:
            continue
    return total


def cpu_by_command_line(marker: str) -> dict[int, float]:
    """CPU seconds of every process whose command line contains ``marker`` (e.g. a database's name)."""
    found = {}
    needle = marker.encode()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if needle in Path(f"/proc/{entry.name}/cmdline").read_bytes():
                fields = _stat_fields(int(entry.name))
                found[int(entry.name)] = (int(fields[11]) + int(fields[12])) / TICK
        except (OSError, IndexError, ValueError):
            continue
    return found


def own_cpu_seconds() -> float:
    """User + system CPU of this process (all its threads)."""
    times = os.times()
    return times.user + times.system


def machine_busy_seconds() -> float:
    """CPU-seconds the whole machine spent neither idle nor waiting on I/O."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    # guest time (fields 8, 9) is already counted in user and nice
    return (sum(fields[:8]) - idle) / TICK


def cores() -> int:
    return len(os.sched_getaffinity(0))
