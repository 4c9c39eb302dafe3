-- The attachment upload limit of the job's guild (bytes) when the job was queued: the gateway
-- sees the guild's boost tier, a worker process delivering the result does not.
ALTER TABLE jobs ADD COLUMN upload_limit BIGINT;

-- A job whose account slot was released early (provider_released) announced that slot
-- already, or a claim in the same transaction took it: leaving submitting or running then
-- frees nothing more, so it wakes nobody.
CREATE OR REPLACE FUNCTION kontext_jobs_notify() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    moved boolean := TG_OP = 'UPDATE' AND NEW.provider <> OLD.provider;
BEGIN
    IF NEW.status = 'queued' AND (TG_OP = 'INSERT' OR OLD.status <> 'queued' OR moved) THEN
        PERFORM pg_notify('kontext_jobs', 'queued:' || NEW.provider);
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.status IN ('submitting', 'running')
            AND (NEW.status NOT IN ('submitting', 'running') OR moved) THEN
        DELETE FROM provider_released WHERE job_id = OLD.id;
        IF NOT FOUND THEN
            PERFORM pg_notify('kontext_jobs', 'freed:' || OLD.provider);
        END IF;
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.status = 'cancelled' AND OLD.status <> 'cancelled' THEN
        PERFORM pg_notify('kontext_jobs', 'cancelled:' || NEW.id);
    END IF;
    RETURN NULL;
END;
$$;
