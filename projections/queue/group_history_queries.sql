-- The history of a task group, one page at a time: the group's own events and
-- its tasks', merged in log order. Every event of the group is found through
-- the event store's (originator_id, version) key and only the page's
-- positions leave the database; no task's history is read whole.

-- name: group_history_page (sqlite)
-- Aggregate, version and log position of a group's events after a position, oldest first.
SELECT originator_id, originator_version AS version, position FROM (
    SELECT e.originator_id, e.originator_version, e.rowid AS position
    FROM tasks t JOIN stored_events e ON e.originator_id = 'task/' || t.task_id
    WHERE t.task_group_id = :task_group_id AND e.rowid > :after
    UNION ALL
    SELECT originator_id, originator_version, rowid AS position
    FROM stored_events WHERE originator_id = :group_key AND rowid > :after
) ORDER BY position LIMIT :limit;

-- name: group_history_page (postgres)
-- Aggregate, version and log position of a group's events after a position, oldest first.
SELECT originator_id, originator_version AS version, position FROM (
    SELECT e.originator_id, e.originator_version, e.notification_id AS position
    FROM tasks t JOIN cairn_events e ON e.originator_id = 'task/' || t.task_id
    WHERE t.task_group_id = :task_group_id AND e.notification_id > :after
    UNION ALL
    SELECT originator_id, originator_version, notification_id AS position
    FROM cairn_events WHERE originator_id = :group_key AND notification_id > :after
) AS page ORDER BY position LIMIT :limit;
