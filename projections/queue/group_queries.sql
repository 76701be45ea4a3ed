-- name: group_task_briefs
-- Every task of a group, as a page lists it: id, state, name, and its
-- dependencies (a JSON list), for the graph.
SELECT task_id, state, json_extract(definition, '$.metadata.name') AS name,
       json_extract(definition, '$.dependencies') AS dependencies
FROM tasks WHERE task_group_id = :task_group_id ORDER BY task_id;

-- name: group_task_briefs (postgres)
SELECT task_id, state, definition::jsonb #>> '{metadata,name}' AS name,
       definition::jsonb #>> '{dependencies}' AS dependencies
FROM tasks WHERE task_group_id = :task_group_id ORDER BY task_id;

-- name: recent_task_groups
-- The task groups with the latest deadlines, with their task counts.
SELECT task_group_id, count(*) AS tasks, sum(CASE WHEN resolved THEN 1 ELSE 0 END) AS resolved,
       max(deadline) AS deadline
FROM tasks GROUP BY task_group_id ORDER BY max(deadline) DESC LIMIT :limit;
