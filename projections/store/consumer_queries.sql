-- name: get_consumer_position
-- Where a consumer stands in the log.
SELECT position FROM consumer_positions WHERE name = :name;

-- name: set_consumer_position
-- Record how far a consumer has got.
INSERT INTO consumer_positions (name, position) VALUES (:name, :position)
ON CONFLICT (name) DO UPDATE SET position = excluded.position;

-- name: list_consumer_positions
-- Every consumer and its position.
SELECT name, position FROM consumer_positions ORDER BY name;
