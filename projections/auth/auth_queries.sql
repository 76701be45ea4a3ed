-- Named queries: every statement Cairn runs against its views.
-- `:name` marks a parameter; `-- name: x (postgres)` specialises a query.

-- name: bump_auth_epoch
-- Count one more change to clients or roles.
INSERT INTO auth_epoch (id, epoch) VALUES (1, 1)
ON CONFLICT (id) DO UPDATE SET epoch = auth_epoch.epoch + 1;

-- name: set_auth_epoch
-- A rebuild moves the count past every value it had (AuthViews.swapped_in).
INSERT INTO auth_epoch (id, epoch) VALUES (1, :epoch)
ON CONFLICT (id) DO UPDATE SET epoch = excluded.epoch;

-- name: get_auth_epoch
-- How many changes to clients or roles there have been.
SELECT epoch FROM auth_epoch WHERE id = 1;

-- name: upsert_client
-- A client created, or created again after deletion.
INSERT INTO clients (client_id, description, scopes, expires, delete_on_expiration, disabled,
                     sealed_token, created, last_modified, last_rotated, last_date_used)
VALUES (:client_id, :description, :scopes, :expires, :delete_on_expiration, FALSE,
        :sealed_token, :created, :created, :created, :created)
ON CONFLICT (client_id) DO UPDATE SET
    description = excluded.description, scopes = excluded.scopes, expires = excluded.expires,
    delete_on_expiration = excluded.delete_on_expiration, disabled = FALSE,
    sealed_token = excluded.sealed_token, created = excluded.created,
    last_modified = excluded.last_modified, last_rotated = excluded.last_rotated,
    last_date_used = excluded.last_date_used;

-- name: set_client_description
-- A client's description changed.
UPDATE clients SET description = :value, last_modified = :modified WHERE client_id = :client_id;

-- name: set_client_expires
-- A client's expiry changed.
UPDATE clients SET expires = :value, last_modified = :modified WHERE client_id = :client_id;

-- name: set_client_scopes
-- A client's scopes changed.
UPDATE clients SET scopes = :value, last_modified = :modified WHERE client_id = :client_id;

-- name: set_client_delete_on_expiration
-- Whether a client is deleted when it expires changed.
UPDATE clients SET delete_on_expiration = :value, last_modified = :modified
WHERE client_id = :client_id;

-- name: set_client_token
-- A client's access token was reset.
UPDATE clients SET sealed_token = :value, last_modified = :modified, last_rotated = :modified
WHERE client_id = :client_id;

-- name: set_client_disabled
-- A client was disabled or enabled.
UPDATE clients SET disabled = :value, last_modified = :modified WHERE client_id = :client_id;

-- name: set_client_last_date_used
-- A client's use was recorded; it is not a modification of the client.
UPDATE clients SET last_date_used = :value WHERE client_id = :client_id;

-- name: delete_client
-- A client was deleted.
DELETE FROM clients WHERE client_id = :client_id;

-- name: get_client
-- One client.
SELECT * FROM clients WHERE client_id = :client_id;

-- name: list_clients
-- A page of clients in id order, optionally under a prefix.
SELECT * FROM clients
WHERE client_id > :after AND substr(client_id, 1, length(:prefix)) = :prefix
ORDER BY client_id LIMIT :limit;

-- name: list_clients (postgres)
SELECT * FROM clients
WHERE client_id COLLATE "C" > :after AND starts_with(client_id, :prefix)
ORDER BY client_id COLLATE "C" LIMIT :limit;

-- name: all_clients
-- Every client, for the credential cache.
SELECT * FROM clients;

-- name: upsert_role
-- A role created, or created again after deletion.
INSERT INTO roles (role_id, description, scopes, created, last_modified)
VALUES (:role_id, :description, :scopes, :created, :created)
ON CONFLICT (role_id) DO UPDATE SET
    description = excluded.description, scopes = excluded.scopes,
    created = excluded.created, last_modified = excluded.last_modified;

-- name: set_role_description
-- A role's description changed.
UPDATE roles SET description = :value, last_modified = :modified WHERE role_id = :role_id;

-- name: set_role_scopes
-- A role's scopes changed.
UPDATE roles SET scopes = :value, last_modified = :modified WHERE role_id = :role_id;

-- name: delete_role
-- A role was deleted.
DELETE FROM roles WHERE role_id = :role_id;

-- name: get_role
-- One role.
SELECT * FROM roles WHERE role_id = :role_id;

-- name: list_roles
-- A page of roles in id order.
SELECT * FROM roles WHERE role_id > :after ORDER BY role_id LIMIT :limit;

-- name: list_roles (postgres)
SELECT * FROM roles WHERE role_id COLLATE "C" > :after ORDER BY role_id COLLATE "C" LIMIT :limit;

-- name: all_roles
-- Every role, for the role index.
SELECT * FROM roles ORDER BY role_id;

-- name: all_roles (postgres)
SELECT * FROM roles ORDER BY role_id COLLATE "C";

-- name: lock_roles
-- Serialise role changes, so that two concurrent updates cannot form a cycle.
SELECT 1;

-- name: lock_roles (postgres)
SELECT pg_advisory_xact_lock(7321002);

-- name: select_event_positions (sqlite)
-- Versions and log positions of one aggregate's events after a version, oldest first.
SELECT originator_version AS version, rowid AS position FROM stored_events
WHERE originator_id = :originator_id AND originator_version > :after
ORDER BY originator_version LIMIT :limit;

-- name: select_event_positions (postgres)
SELECT originator_version AS version, notification_id AS position FROM cairn_events
WHERE originator_id = :originator_id AND originator_version > :after
ORDER BY originator_version LIMIT :limit;
