"""Tasks and their runs: the queue's aggregate.

A task is defined once and then lives through runs. Each run is created
pending (scheduled, retried, rerun), claimed by a worker (running), and
resolved as completed, failed or exception with a reason. The rules here are
Taskcluster's:

- a run resolved as exception with ``worker-shutdown``, ``intermittent-task``
  or ``claim-expired`` is retried by a new pending run while retries remain;
  other reasons end the task;
- a task has at most 50 runs, and nothing changes after its deadline except
  the deadline's own resolution and its expiry;
- resolving twice with the same outcome is harmless; a different outcome
  after resolution is a conflict.

Every method checks its invariant and then records exactly one past-tense
event; the event handlers only fold state.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from eventsourcing.domain import event

from cairn.domain.aggregate import CairnAggregate
from cairn.domain.errors import Conflict, InvalidInput, NotFound
from cairn.domain.queue.artifacts import EXCEPTION_GRACE, EXPIRES_SKEW, replacement_allowed
from cairn.domain.queue.task_queue_id import TaskQueueId
from cairn.domain.timestamps import iso, parse_time

MAX_RUNS = 50
RETRYING_REASONS = frozenset({"worker-shutdown", "intermittent-task", "claim-expired"})
EXCEPTION_REASONS = frozenset(
    {
        "worker-shutdown",
        "malformed-payload",
        "resource-unavailable",
        "internal-error",
        "superseded",
        "intermittent-task",
    }
)
RESOLVED_STATES = frozenset({"completed", "failed", "exception"})
PRIORITIES = ("highest", "very-high", "high", "medium", "low", "very-low", "lowest")


def task_key(task_id: str) -> str:
    return f"task/{task_id}"


def with_queue_halves(definition: dict[str, Any]) -> dict[str, Any]:
    """A definition as Taskcluster shows it: its queue's two halves first, then the rest."""
    return {**TaskQueueId.parse(definition["taskQueueId"]).halves(), **definition}


def priority_rank(priority: str) -> int:
    """Higher is claimed first."""
    return len(PRIORITIES) - PRIORITIES.index(priority)


class Task(CairnAggregate):
    #: Replaced whole, if ever, never edited: a cached copy of a task shares it
    #: (``projections/store/aggregate_cache.py``).
    unchanged_in_place = frozenset({"definition"})

    @staticmethod
    def create_id(task_id: str, **_: Any) -> str:
        return task_key(task_id)

    @event("Defined")
    def __init__(self, task_id: str, definition: dict[str, Any]) -> None:
        self.task_id = task_id
        self.definition = definition
        self.priority = definition["priority"]
        self.retries_left = definition["retries"]
        self.runs: list[dict[str, Any]] = []
        self.expired = False
        self.artifacts: dict[tuple[int, str], dict[str, Any]] = {}

    # reading

    @property
    def deadline(self) -> datetime:
        return parse_time(self.definition["deadline"])

    @property
    def state(self) -> str:
        return self.runs[-1]["state"] if self.runs else "unscheduled"

    @property
    def resolved(self) -> bool:
        return self.state in RESOLVED_STATES

    @property
    def task_queue_id(self) -> str:
        return self.definition["taskQueueId"]

    @property
    def task_group_id(self) -> str:
        return self.definition["taskGroupId"]

    def run(self, run_id: int) -> dict[str, Any]:
        if not 0 <= run_id < len(self.runs):
            raise Conflict(f"Run {run_id} does not exist for task {self.task_id}")
        return self.runs[run_id]

    def current_definition(self) -> dict[str, Any]:
        return {**self.definition, "priority": self.priority}

    def public_definition(self) -> dict[str, Any]:
        """The current definition as getTask and claims show it."""
        return with_queue_halves(self.current_definition())

    def status(self) -> dict[str, Any]:
        d = self.definition
        return {
            "taskId": self.task_id,
            **TaskQueueId.parse(d["taskQueueId"]).fields(),
            "schedulerId": d["schedulerId"],
            "projectId": d["projectId"],
            "taskGroupId": d["taskGroupId"],
            "deadline": d["deadline"],
            "expires": d["expires"],
            "priority": self.priority,
            "retriesLeft": self.retries_left,
            "state": self.state,
            "runs": [_public_run(r) for r in self.runs],
        }

    # scheduling

    def schedule(self, now: datetime, reason: str = "scheduled") -> bool:
        """Make run 0 pending; False if the task already has runs."""
        self._check_not_expired()
        if self.runs:
            return False
        if now >= self.deadline:
            raise Conflict(f"Task {self.task_id} cannot be scheduled after its deadline")
        self._run_pending(run_id=0, reason_created=reason, scheduled=iso(now))
        return True

    def rerun(self, now: datetime) -> None:
        self._check_not_expired()
        if now >= self.deadline:
            raise Conflict(f"Task {self.task_id} cannot be rerun after its deadline")
        if not self.runs:
            raise Conflict(f"Task {self.task_id} is unscheduled; use scheduleTask")
        if not self.resolved:
            return
        if len(self.runs) >= MAX_RUNS:
            raise Conflict(f"Task {self.task_id} already has {MAX_RUNS} runs")
        self._run_pending(run_id=len(self.runs), reason_created="rerun", scheduled=iso(now))

    @event("RunPending")
    def _run_pending(self, run_id: int, reason_created: str, scheduled: str) -> None:
        if reason_created == "retry":
            self.retries_left -= 1
        elif reason_created == "rerun":
            self.retries_left = max(min(self.definition["retries"], MAX_RUNS - run_id - 1), 0)
        self.runs.append(
            {"runId": run_id, "state": "pending", "reasonCreated": reason_created, "scheduled": scheduled}
        )

    # claims

    def claim(self, run_id: int, worker_group: str, worker_id: str, now: datetime, timeout: int) -> None:
        self._check_not_expired()
        run = self.run(run_id)
        if run["state"] != "pending":
            raise Conflict(f"Run {run_id} of task {self.task_id} is {run['state']}, not pending")
        self._run_claimed(
            run_id=run_id,
            worker_group=worker_group,
            worker_id=worker_id,
            taken_until=iso(now + timedelta(seconds=timeout)),
            started=iso(now),
            task_queue_id=self.task_queue_id,
        )

    @event("RunClaimed")
    def _run_claimed(
        self, run_id: int, worker_group: str, worker_id: str, taken_until: str, started: str,
        task_queue_id: str | None = None,
    ) -> None:
        # ``task_queue_id`` restates the definition's, for views that follow
        # claims without folding the task (a rebuild's worker views); events
        # recorded before it was added lack it, hence the default.
        run = self.runs[run_id]
        run.update(state="running", workerGroup=worker_group, workerId=worker_id)
        run.update(takenUntil=taken_until, started=started)

    def reclaim(self, run_id: int, now: datetime, timeout: int) -> None:
        run = self.run(run_id)
        if run["state"] != "running":
            raise Conflict(
                f"Run {run_id} of task {self.task_id} is {run['state']}; it can no longer be reclaimed"
            )
        if now >= self.deadline:
            raise Conflict(f"Task {self.task_id} is past its deadline")
        taken_until = min(now + timedelta(seconds=timeout), self.deadline)
        self._run_reclaimed(run_id=run_id, taken_until=iso(taken_until))

    @event("RunReclaimed")
    def _run_reclaimed(self, run_id: int, taken_until: str) -> None:
        self.runs[run_id]["takenUntil"] = taken_until

    # resolution

    def report(self, run_id: int, state: str, reason: str, now: datetime) -> bool:
        """A worker reports the outcome of its run; False if it was already reported so."""
        run = self.run(run_id)
        if run["state"] == state and run.get("reasonResolved") == reason:
            return False
        if run["state"] != "running":
            raise Conflict(
                f"Run {run_id} of task {self.task_id} is {run['state']}, not running; "
                "it cannot be resolved now"
            )
        if state == "exception" and reason not in EXCEPTION_REASONS:
            raise InvalidInput(f"{reason} is not a reason a worker can report")
        self._resolve(run_id, state, reason, now)
        return True

    def expire_claim(self, run_id: int, now: datetime) -> bool:
        run = self.run(run_id)
        if run["state"] != "running" or parse_time(run["takenUntil"]) > now:
            return False
        self._resolve(run_id, "exception", "claim-expired", now)
        return True

    def cancel(self, now: datetime) -> bool:
        """Resolve the task as canceled; False if it is already resolved.

        Past its deadline a task is no longer the scheduler's to cancel: it
        resolves as deadline-exceeded, resolved or not."""
        if not self.cancellable(now):
            raise Conflict(f"Task {self.task_id} can't be canceled past its deadline of {self.definition['deadline']}")
        return self._end_with_exception("canceled", now)

    def cancellable(self, now: datetime) -> bool:
        return now < self.deadline

    def exceed_deadline(self, now: datetime) -> bool:
        if now < self.deadline:
            return False
        return self._end_with_exception("deadline-exceeded", now)

    def _end_with_exception(self, reason: str, now: datetime) -> bool:
        if self.resolved:
            return False
        if not self.runs:
            self._unscheduled_resolved(run_id=0, reason_resolved=reason, resolved=iso(now))
        else:
            self._run_resolved(
                run_id=len(self.runs) - 1, state="exception", reason_resolved=reason, resolved=iso(now)
            )
        return True

    def _resolve(self, run_id: int, state: str, reason: str, now: datetime) -> None:
        self._run_resolved(run_id=run_id, state=state, reason_resolved=reason, resolved=iso(now))
        retry = (
            state == "exception"
            and reason in RETRYING_REASONS
            and self.retries_left > 0
            and len(self.runs) < MAX_RUNS
            and now < self.deadline
        )
        if retry:
            self._run_pending(run_id=len(self.runs), reason_created="retry", scheduled=iso(now))

    @event("RunResolved")
    def _run_resolved(self, run_id: int, state: str, reason_resolved: str, resolved: str) -> None:
        run = self.runs[run_id]
        run.update(state=state, reasonResolved=reason_resolved, resolved=resolved)

    @event("UnscheduledResolved")
    def _unscheduled_resolved(self, run_id: int, reason_resolved: str, resolved: str) -> None:
        self.runs.append(
            {
                "runId": run_id,
                "state": "exception",
                "reasonCreated": "exception",
                "reasonResolved": reason_resolved,
                "scheduled": resolved,
                "resolved": resolved,
            }
        )

    # other changes

    def change_priority(self, priority: str) -> bool:
        self._check_not_expired()
        if priority == self.priority:
            return False
        self._priority_changed(priority=priority, old_priority=self.priority)
        return True

    @event("PriorityChanged")
    def _priority_changed(self, priority: str, old_priority: str) -> None:
        self.priority = priority

    def expire(self) -> None:
        if not self.expired:
            self._expired()

    @event("Expired")
    def _expired(self) -> None:
        self.expired = True

    def _check_not_expired(self) -> None:
        if self.expired:
            raise Conflict(f"Task {self.task_id} has expired")

    # artifacts

    def artifact(self, run_id: int, name: str) -> dict[str, Any] | None:
        return self.artifacts.get((run_id, name))

    def create_artifact(
        self, run_id: int, name: str, storage_type: str, content_type: str, expires: str,
        details: dict[str, Any], content_length: int | None, now: datetime,
    ) -> bool:
        """Record an artifact of a run; False if the same one is already recorded.

        The run must have been claimed and still be running, or have been
        resolved as exception less than 25 minutes ago; the artifact must
        expire with or before its task.
        """
        self._check_not_expired()
        if parse_time(expires) < now - EXPIRES_SKEW:
            raise InvalidInput("Expires must be in the future")
        if not 0 <= run_id < len(self.runs):
            raise InvalidInput(f"Run {run_id} of task {self.task_id} not found")
        run = self.runs[run_id]
        if not run.get("workerGroup"):
            raise InvalidInput("Run was not claimed by a worker and so no artifacts can exist")
        if parse_time(expires) > parse_time(self.definition["expires"]):
            raise InvalidInput(
                f"Artifact expires ({expires}) after the task expiration {self.definition['expires']} "
                "- this is not allowed, artifacts may not expire after the task they belong to expires"
            )
        in_grace = run["state"] == "exception" and parse_time(run["resolved"]) > now - EXCEPTION_GRACE
        if run["state"] != "running" and not in_grace:
            raise Conflict(
                "Artifacts cannot be created for a task after it is resolved, unless it is resolved "
                "'exception', and even in this case only up to 25 min past resolution."
            )
        existing = self.artifacts.get((run_id, name))
        if existing is None:
            self._artifact_created(
                run_id=run_id, name=name, storage_type=storage_type, content_type=content_type,
                expires=expires, details=details, content_length=content_length,
            )
            return True
        if storage_type == existing["storageType"] == "object":
            details = existing["details"]
        new = {"storageType": storage_type, "contentType": content_type, "expires": expires, "details": details}
        if all(existing[k] == v for k, v in new.items() if k != "contentType" or storage_type != "link"):
            return False
        if not replacement_allowed(existing, new):
            raise Conflict(
                f"Artifact {name} already exists with different properties, and none of the allowed "
                f"exceptions apply: storageType {existing['storageType']}, contentType "
                f"{existing['contentType']}, expires {existing['expires']}"
            )
        self._artifact_replaced(
            run_id=run_id, name=name, storage_type=storage_type, expires=expires, details=details
        )
        return True

    @event("ArtifactCreated")
    def _artifact_created(
        self, run_id: int, name: str, storage_type: str, content_type: str, expires: str,
        details: dict[str, Any], content_length: int | None,
    ) -> None:
        self.artifacts[(run_id, name)] = {
            "runId": run_id,
            "name": name,
            "storageType": storage_type,
            "contentType": content_type,
            "expires": expires,
            "details": details,
            "contentLength": content_length,
            "present": storage_type != "object",
        }

    @event("ArtifactReplaced")
    def _artifact_replaced(
        self, run_id: int, name: str, storage_type: str, expires: str, details: dict[str, Any]
    ) -> None:
        self.artifacts[(run_id, name)].update(storageType=storage_type, expires=expires, details=details)

    def finish_artifact(self, run_id: int, name: str, upload_id: str) -> bool:
        """Mark an object artifact's data as uploaded; False if it already was."""
        artifact = self.artifacts.get((run_id, name))
        if artifact is None:
            raise NotFound(f"Artifact {name} of run {run_id} of task {self.task_id} not found")
        if artifact["storageType"] != "object":
            raise InvalidInput("Only object artifacts can be finished")
        if artifact["present"]:
            return False
        if upload_id != artifact["details"].get("uploadId"):
            raise InvalidInput("The given uploadId does not match that of the artifact")
        self._artifact_finished(run_id=run_id, name=name)
        return True

    @event("ArtifactFinished")
    def _artifact_finished(self, run_id: int, name: str) -> None:
        self.artifacts[(run_id, name)]["present"] = True

    def expire_artifact(self, run_id: int, name: str, now: datetime) -> dict[str, Any] | None:
        """Forget an artifact past its expiry; returns what it was, or None if nothing is due."""
        artifact = self.artifacts.get((run_id, name))
        if artifact is None or parse_time(artifact["expires"]) > now:
            return None
        self._artifact_expired(run_id=run_id, name=name)
        return artifact

    @event("ArtifactExpired")
    def _artifact_expired(self, run_id: int, name: str) -> None:
        self.artifacts.pop((run_id, name), None)


def _public_run(run: dict[str, Any]) -> dict[str, Any]:
    return dict(run)
