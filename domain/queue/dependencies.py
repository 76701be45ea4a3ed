"""When a task's dependency is satisfied, by Taskcluster's two rules.

``all-completed``: each prerequisite must complete; a prerequisite that
fails or ends in exception leaves the dependent unscheduled until its
deadline. ``all-resolved``: each prerequisite must merely resolve, however.
A task that depends on itself waits for an explicit scheduleTask.
"""

from __future__ import annotations

RESOLVED = frozenset({"completed", "failed", "exception"})


def satisfies(requires: str, prerequisite_state: str | None) -> bool:
    if requires == "all-resolved":
        return prerequisite_state in RESOLVED
    return prerequisite_state == "completed"


def waits_on(requires: str, prerequisite: str, dependent: str, prerequisite_state: str | None) -> bool:
    """Whether ``dependent`` must wait for ``prerequisite`` in its current state."""
    if prerequisite == dependent:
        return True
    return not satisfies(requires, prerequisite_state)
