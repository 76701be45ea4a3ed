"""The queue: tasks, their runs, task groups and workers.

How the queue keeps its promises
================================

A run that becomes pending is claimed by exactly one worker, and a task
whose prerequisites are done is released — even with many API processes
claiming, resolving and creating at once. Two things make this so.

**Deciding views commit with the events.** Every command of
:class:`~cairn.domain.queue.service.QueueService` is one transaction: it
loads the aggregates, decides, and saves their new events. The views that
commands *decide* on — the pending runs (``pending``), the running ones
(``claims``), each task's state and the dependency waits
(``projections/queue/views.py``) — are written by the same save, in the same
transaction. So a run is pending in the view exactly when the log says it is:
there is no window in which an event is recorded but its view row is not, or
the reverse, and no follower that can fall behind.

**Concurrent commands see each other, through row locks or the log's keys.**

- *A claim is never doubled.* claimWork takes pending rows with
  ``FOR UPDATE SKIP LOCKED`` (PostgreSQL; SQLite has one writer at a time)
  and deletes them in the commit that records ``RunClaimed``: a second
  claimer skips the locked rows, and after the commit they are gone. Should
  two commands still change one task, both save the task's next version; the
  log's unique key on (aggregate, version) refuses the second, which is
  retried on the state the first left (``EventLog.command``) and finds the
  run no longer pending.
- *A claim is never lost.* The pending row leaves only with the event that
  claims (or resolves) the run. A claim whose worker stops reclaiming
  expires at ``takenUntil``: the reaper resolves the run as
  ``claim-expired`` and, while retries remain, the same transaction makes a
  new run pending.
- *Dependents are released in the transaction that resolves their last
  prerequisite.* A resolving task first locks its own row (exclusive) and
  then looks for dependents whose waits are all satisfied; a new task
  share-locks its prerequisites' rows while it decides whether to wait. So
  a dependent being created is either seen waiting by the resolution, or
  sees the resolution and does not wait — never neither. Releasing in the
  same transaction means no crash between "resolved" and "released" can
  strand a dependent, and no follower has to catch up first.
- *A group resolves once.* The last unresolved task of a group resolves
  under the group's row lock, so exactly one resolution records the group
  resolved; a group being sealed is share-locked by a task joining it.

The rules themselves live on the aggregates (:class:`~.task.Task`,
:class:`~.task_group.TaskGroup`, :class:`~.worker.Worker`); the service only
loads, calls and saves, and the API only translates HTTP to these calls.
"""
