-- Several processes share one PostgreSQL database: provider accounts and notifications.
-- A claim first locks its provider's account row (claims of one provider take turns across
-- processes), counts the provider's jobs that hold a slot (submitting or running:
-- jobs_provider_busy) and spends a token of the bucket kept here. Lock order:
-- provider_accounts -> job -> queue_lanes -> queue_user_lanes -> guild_load.

CREATE TABLE provider_accounts (
    provider      TEXT PRIMARY KEY,
    tokens        DOUBLE PRECISION NOT NULL,  -- rate tokens left at ``stamp``
    stamp         DOUBLE PRECISION NOT NULL,
    blocked_until DOUBLE PRECISION NOT NULL DEFAULT 0  -- the provider said "slow down"
);

CREATE INDEX jobs_provider_busy ON jobs (provider) WHERE status IN ('submitting', 'running');

-- Jobs the provider has finished with while their status still says submitting or running
-- (their outputs are being stored): they no longer hold a slot of the account. A row goes
-- when its job leaves those statuses.
CREATE TABLE provider_released (
    job_id   BIGINT PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
    provider TEXT NOT NULL
);

-- Wake other processes (LISTEN kontext_jobs): work queued, an account slot freed, a job
-- cancelled. Delivered when the transaction commits; repeats within one are merged.
CREATE FUNCTION kontext_jobs_notify() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    moved boolean := TG_OP = 'UPDATE' AND NEW.provider <> OLD.provider;
BEGIN
    IF NEW.status = 'queued' AND (TG_OP = 'INSERT' OR OLD.status <> 'queued' OR moved) THEN
        PERFORM pg_notify('kontext_jobs', 'queued:' || NEW.provider);
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.status IN ('submitting', 'running')
            AND (NEW.status NOT IN ('submitting', 'running') OR moved) THEN
        DELETE FROM provider_released WHERE job_id = OLD.id;
        PERFORM pg_notify('kontext_jobs', 'freed:' || OLD.provider);
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.status = 'cancelled' AND OLD.status <> 'cancelled' THEN
        PERFORM pg_notify('kontext_jobs', 'cancelled:' || NEW.id);
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER jobs_notify AFTER INSERT OR UPDATE OF status, provider ON jobs
    FOR EACH ROW EXECUTE FUNCTION kontext_jobs_notify();
