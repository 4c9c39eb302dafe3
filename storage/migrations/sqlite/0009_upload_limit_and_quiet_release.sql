-- The attachment upload limit of the job's guild (bytes) when the job was queued: the gateway
-- sees the guild's boost tier, a worker process delivering the result does not. (The quiet
-- release of the PostgreSQL migration of this number concerns processes sharing a database.)
ALTER TABLE jobs ADD COLUMN upload_limit INTEGER;
