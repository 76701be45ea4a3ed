"""The GitHub check runs reported for one task (``reporting: checks-v1``): which run of the task has which check run.

A check run is created on GitHub first, and its id recorded here
(``GithubTaskChecks.CheckRunCreated``): every later change of that run of
the task updates the same check run, and a reporter that sees the task's
events again after a restart finds the id and updates rather than creates.
A new run of the task (a rerun) gets a check run of its own, as Taskcluster
does. ``CheckRunReported`` records the last status and conclusion sent, so
an event seen again sends nothing that GitHub already has.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.domain import event

from cairn.domain.aggregate import CairnAggregate
from cairn.domain.event_log import EventLog

PREFIX = "github-checks/"


def checks_key(task_id: str) -> str:
    return f"{PREFIX}{task_id}"


class GithubTaskChecks(CairnAggregate):
    @staticmethod
    def create_id(task_id: str, **_: Any) -> str:
        return checks_key(task_id)

    @event("Started")
    def __init__(self, task_id: str, task_group_id: str) -> None:
        self.task_id = task_id
        self.task_group_id = task_group_id
        #: str(run_id) -> {"check_run_id": int, "status": str, "conclusion": str | None}
        self.runs: dict[str, dict[str, Any]] = {}

    def check_run_id(self, run_id: int) -> int | None:
        run = self.runs.get(str(run_id))
        return None if run is None else int(run["check_run_id"])

    def latest_check_run_id(self) -> int | None:
        if not self.runs:
            return None
        return int(self.runs[max(self.runs, key=int)]["check_run_id"])

    def already_reported(self, run_id: int, status: str, conclusion: str | None) -> bool:
        run = self.runs.get(str(run_id))
        return run is not None and run["status"] == status and run["conclusion"] == conclusion

    @event("CheckRunCreated")
    def check_run_created(self, run_id: int, check_run_id: int, status: str, conclusion: str | None) -> None:
        self.runs[str(run_id)] = {"check_run_id": check_run_id, "status": status, "conclusion": conclusion}

    @event("CheckRunReported")
    def check_run_reported(self, run_id: int, status: str, conclusion: str | None) -> None:
        self.runs[str(run_id)].update(status=status, conclusion=conclusion)


class CheckRuns:
    """Recording check runs; the reporter creates them on GitHub and calls these."""

    def __init__(self, log: EventLog):
        self.log = log

    def of(self, task_id: str) -> GithubTaskChecks | None:
        return self.log.get(checks_key(task_id))

    def record_created(self, task_id: str, task_group_id: str, run_id: int, check_run_id: int, status: str,
                       conclusion: str | None) -> None:
        def record() -> None:
            checks = self.of(task_id) or GithubTaskChecks(task_id=task_id, task_group_id=task_group_id)
            checks.check_run_created(run_id=run_id, check_run_id=check_run_id, status=status, conclusion=conclusion)
            self.log.save(checks)

        self.log.command(record)

    def record_reported(self, task_id: str, run_id: int, status: str, conclusion: str | None) -> None:
        def record() -> None:
            checks = self.of(task_id)
            if checks is None or checks.check_run_id(run_id) is None or checks.already_reported(
                run_id, status, conclusion
            ):
                return
            checks.check_run_reported(run_id=run_id, status=status, conclusion=conclusion)
            self.log.save(checks)

        self.log.command(record)
