"""The notify views, folded from Notification and DenylistEntry events in the transaction that records them.

- ``notify_denylist``: the denylisted addresses, for ``listDenylist``;
- ``notify_notifications``: every notification and where it stands. The
  requested ones, with the time of their next attempt, are the delivery's
  to-do list: a notification recorded is due at once, so none is lost
  between its request and its delivery, whichever process restarts.

Every row follows from the events alone, so a rebuild replays the log into
the same rows.
"""

from __future__ import annotations

from typing import Any

from cairn.domain.notify.model import DenylistEntry, Notification
from cairn.domain.timestamps import iso
from cairn.projections.projection import Projection
from cairn.projections.read_model import ReadModel
from cairn.projections.store.session import SqlSession


def _notification_id(e: Any) -> str:
    return e.originator_id.removeprefix("notification/")


class NotifyViews(Projection):
    name = "notify"
    tables = ("notify_denylist", "notify_notifications")

    def register(self) -> None:
        self.on(DenylistEntry.Listed, self.listed)
        self.on(DenylistEntry.Relisted, self.listed)
        self.on(DenylistEntry.Unlisted, self.unlisted)
        self.on(Notification.Requested, self.requested)
        self.on(Notification.Sent, self.ended("sent"))
        self.on(Notification.Failed, self.ended("failed"))
        self.on(Notification.Skipped, self.ended("skipped"))
        self.on(Notification.AttemptFailed, self.attempt_failed)

    def listed(self, session: SqlSession, e: Any, aggregate: Any) -> None:
        _, notification_type, address = e.originator_id.split("/", 2)
        session.run("add_denylist_address", {"notification_type": notification_type, "address": address})

    def unlisted(self, session: SqlSession, e: Any, aggregate: Any) -> None:
        _, notification_type, address = e.originator_id.split("/", 2)
        session.run("remove_denylist_address", {"notification_type": notification_type, "address": address})

    def requested(self, session: SqlSession, e: Any, aggregate: Any) -> None:
        session.run(
            "insert_notification",
            {
                "notification_id": e.notification_id,
                "channel": e.channel,
                "address": e.address,
                "task_id": e.source.get("taskId") or "",
                "route": e.source.get("route") or "",
                "requested": iso(e.timestamp),
            },
        )

    def ended(self, state: str) -> Any:
        def end(session: SqlSession, e: Any, aggregate: Any) -> None:
            session.run(
                "end_notification",
                {
                    "notification_id": _notification_id(e),
                    "state": state,
                    "attempts": getattr(e, "attempts", 0),
                    "last_error": getattr(e, "error", None) or getattr(e, "reason", None),
                },
            )

        return end

    def attempt_failed(self, session: SqlSession, e: Any, aggregate: Any) -> None:
        session.run(
            "retry_notification",
            {
                "notification_id": _notification_id(e),
                "attempts": e.attempts,
                "next_attempt": e.retry_at,
                "last_error": e.error,
            },
        )


def _notification(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "notificationId": row["notification_id"],
        "channel": row["channel"],
        "address": row["address"],
        "taskId": row["task_id"] or None,
        "route": row["route"] or None,
        "state": row["state"],
        "attempts": int(row["attempts"]),
        "nextAttempt": row["next_attempt"],
        "lastError": row["last_error"],
        "requested": row["requested"],
    }


class NotifyReadModel(ReadModel):
    def denylist(self, after: tuple[str, str], limit: int) -> list[dict[str, str]]:
        rows = self._rows("list_denylist", {"after_type": after[0], "after_address": after[1], "limit": limit})
        return [{"notificationType": r["notification_type"], "notificationAddress": r["address"]} for r in rows]

    def due(self, now: str, limit: int) -> list[str]:
        return [r["notification_id"] for r in self._rows("due_notifications", {"now": now, "limit": limit})]

    def next_due(self) -> str | None:
        row = self._one("next_notification_due")
        return row["next_attempt"] if row else None

    def of_task(self, task_id: str) -> list[dict[str, Any]]:
        return [_notification(r) for r in self._rows("task_notifications", {"task_id": task_id})]

    def in_state(self, state: str, limit: int = 100) -> list[dict[str, Any]]:
        return [_notification(r) for r in self._rows("notifications_in_state", {"state": state, "limit": limit})]
