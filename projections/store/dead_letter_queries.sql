-- name: insert_dead_letter
-- Record that a consumer set an event aside; the first record of one position stands.
INSERT INTO dead_letters (consumer, position, originator_id, originator_version, event_type, reason, attempts, failed_at)
VALUES (:consumer, :position, :originator_id, :originator_version, :event_type, :reason, :attempts, :failed_at)
ON CONFLICT (consumer, position) DO NOTHING;

-- name: list_dead_letters
-- Every event set aside, by consumer and position.
SELECT consumer, position, originator_id, originator_version, event_type, reason, attempts, failed_at
FROM dead_letters ORDER BY consumer, position;

-- name: count_dead_letters
-- How many events each consumer has set aside.
SELECT consumer, count(*) AS n FROM dead_letters GROUP BY consumer ORDER BY consumer;
