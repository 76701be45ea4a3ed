-- The notify views: the denylist, and every notification with where it
-- stands; kept in the transaction of their events, rebuilt from them alone.

-- name: create_notify_denylist
-- One row per denylisted (notificationType, address).
CREATE TABLE IF NOT EXISTS notify_denylist (
    notification_type TEXT NOT NULL,
    address TEXT NOT NULL,
    PRIMARY KEY (notification_type, address)
);

-- name: create_notify_notifications
-- One row per notification: `state` is requested, sent, skipped or failed;
-- a requested one is due at `next_attempt`; `task_id` is empty for API calls.
CREATE TABLE IF NOT EXISTS notify_notifications (
    notification_id TEXT PRIMARY KEY,
    channel TEXT NOT NULL,
    address TEXT NOT NULL,
    task_id TEXT NOT NULL,
    route TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt TEXT,
    last_error TEXT,
    requested TEXT NOT NULL
);

-- name: create_notify_notifications_due
CREATE INDEX IF NOT EXISTS notify_notifications_due ON notify_notifications (next_attempt)
WHERE state = 'requested';

-- name: create_notify_notifications_by_task
CREATE INDEX IF NOT EXISTS notify_notifications_by_task ON notify_notifications (task_id, requested);
