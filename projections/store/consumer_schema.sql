-- name: create_consumer_positions
-- How far along the log each consumer has got.
CREATE TABLE IF NOT EXISTS consumer_positions (
    name TEXT PRIMARY KEY,
    position BIGINT NOT NULL
);
