-- Named queries of the notify views.

-- name: add_denylist_address
-- An address was denylisted.
INSERT INTO notify_denylist (notification_type, address) VALUES (:notification_type, :address)
ON CONFLICT (notification_type, address) DO NOTHING;

-- name: remove_denylist_address
-- An address was taken off the denylist.
DELETE FROM notify_denylist WHERE notification_type = :notification_type AND address = :address;

-- name: list_denylist
-- One page of the denylist, in (type, address) order, after the given pair.
SELECT notification_type, address FROM notify_denylist
WHERE notification_type > :after_type OR (notification_type = :after_type AND address > :after_address)
ORDER BY notification_type, address
LIMIT :limit;

-- name: insert_notification
-- A notification was requested; it is due at once.
INSERT INTO notify_notifications
    (notification_id, channel, address, task_id, route, state, attempts, next_attempt, last_error, requested)
VALUES (:notification_id, :channel, :address, :task_id, :route, 'requested', 0, :requested, NULL, :requested)
ON CONFLICT (notification_id) DO NOTHING;

-- name: end_notification
-- A notification was sent, skipped or failed for good.
UPDATE notify_notifications
SET state = :state, attempts = :attempts, next_attempt = NULL, last_error = :last_error
WHERE notification_id = :notification_id;

-- name: retry_notification
-- An attempt failed; the next one is due at :next_attempt.
UPDATE notify_notifications
SET attempts = :attempts, next_attempt = :next_attempt, last_error = :last_error
WHERE notification_id = :notification_id;

-- name: due_notifications
-- Requested notifications whose next attempt is due by :now, the longest-waiting first.
SELECT notification_id FROM notify_notifications
WHERE state = 'requested' AND next_attempt <= :now
ORDER BY next_attempt, notification_id
LIMIT :limit;

-- name: next_notification_due
-- When the next requested notification is due.
SELECT MIN(next_attempt) AS next_attempt FROM notify_notifications WHERE state = 'requested';

-- name: task_notifications
-- The notifications a task's routes asked for, oldest first.
SELECT * FROM notify_notifications WHERE task_id = :task_id ORDER BY requested, notification_id;

-- name: notifications_in_state
-- The latest notifications in a state (failed, say), newest first.
SELECT * FROM notify_notifications WHERE state = :state ORDER BY requested DESC, notification_id LIMIT :limit;
