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

-- A claim in one statement, so the provider's account row is locked for the claim's own work
-- only, never across round trips between a process and the server. Takes the provider's
-- next job in the fair order (guild lanes least recently served first, skipping guilds at
-- their running cap; in a guild, users in turn; each user's oldest runnable job) and returns
-- it, or nothing.
--
-- p_slots, p_rate, p_burst: the account's limits (p_slots NULL: no account is held here).
-- The account row is locked first (claims of one provider take turns across processes);
-- the jobs in p_release, which the provider has finished with, give back their slots; then
-- the bucket and the busy count decide (that count is a statement of its own, so it sees
-- every claim committed before the lock was granted). A claim that takes nothing announces
-- the slots it released, and p_owed more that earlier claims of the same batch released.
CREATE FUNCTION kontext_claim(
    p_provider TEXT,
    p_worker TEXT,
    p_now DOUBLE PRECISION,
    p_lease_until DOUBLE PRECISION,
    p_slots INTEGER,
    p_rate DOUBLE PRECISION,
    p_burst INTEGER,
    p_release BIGINT[],
    p_owed INTEGER
) RETURNS SETOF jobs LANGUAGE plpgsql AS $$
DECLARE
    v_account provider_accounts%ROWTYPE;
    v_tokens DOUBLE PRECISION;
    v_released BIGINT := 0;
    v_admitted BOOLEAN := TRUE;
    v_lane RECORD;
    v_picked BIGINT;
    v_claimed jobs%ROWTYPE;
    v_over BOOLEAN;
    v_page INTEGER;
    v_offset INTEGER := 0;
BEGIN
    IF p_slots IS NOT NULL THEN
        SELECT * INTO v_account FROM provider_accounts WHERE provider = p_provider FOR UPDATE;
        IF NOT FOUND THEN
            INSERT INTO provider_accounts (provider, tokens, stamp)
                VALUES (p_provider, p_burst, p_now) ON CONFLICT (provider) DO NOTHING;
            SELECT * INTO v_account FROM provider_accounts WHERE provider = p_provider FOR UPDATE;
        END IF;
    END IF;
    IF cardinality(p_release) > 0 THEN
        WITH freed AS (
            INSERT INTO provider_released (job_id, provider)
            SELECT id, provider FROM jobs
            WHERE id = ANY(p_release) AND status IN ('submitting', 'running')
            ON CONFLICT (job_id) DO NOTHING
            RETURNING job_id)
        SELECT count(*) INTO v_released FROM freed;
    END IF;
    IF p_slots IS NOT NULL THEN
        IF p_rate IS NOT NULL THEN
            v_tokens := LEAST(p_burst::DOUBLE PRECISION,
                v_account.tokens + GREATEST(0, p_now - v_account.stamp) * p_rate / 60.0);
        END IF;
        v_admitted := p_now >= v_account.blocked_until
            AND (v_tokens IS NULL OR v_tokens >= 1.0 - 1e-9)
            AND (SELECT count(*) FROM jobs j WHERE j.provider = p_provider
                    AND j.status IN ('submitting', 'running')
                    AND NOT EXISTS (SELECT 1 FROM provider_released r WHERE r.job_id = j.id)
                ) < p_slots;
    END IF;
    -- The lanes are read a page at a time, so the plan stays an ordered walk of a few lanes
    -- (the lanes index) whatever the planner's statistics say, never a sort of them all.
    WHILE v_admitted LOOP
        v_page := 0;
        FOR v_lane IN
            SELECT c.guild_id, g.running < g.max_running AS open FROM (
                SELECT guild_id, last_served FROM queue_lanes
                WHERE provider = p_provider AND queued > 0
                ORDER BY last_served, guild_id LIMIT 32 OFFSET v_offset
            ) c JOIN guild_load g ON g.guild_id = c.guild_id
            ORDER BY c.last_served, c.guild_id
        LOOP
            v_page := v_page + 1;
            CONTINUE WHEN NOT v_lane.open;
            BEGIN
                LOOP
                    SELECT n.id INTO v_picked FROM queue_user_lanes u CROSS JOIN LATERAL (
                        SELECT j.id FROM jobs j
                        WHERE j.status = 'queued' AND j.provider = p_provider
                            AND j.guild_id = v_lane.guild_id AND j.user_id = u.user_id
                            AND (j.run_after IS NULL OR j.run_after <= p_now)
                        ORDER BY j.id LIMIT 1) n
                    WHERE u.provider = p_provider AND u.guild_id = v_lane.guild_id
                        AND u.queued > 0
                    ORDER BY u.last_served, u.user_id LIMIT 1;
                    EXIT WHEN v_picked IS NULL;
                    -- Waits for a row lock a plain update holds for a moment (the front end
                    -- storing the status message); a job taken meanwhile is not queued any
                    -- more, and the next pick passes it over.
                    UPDATE jobs SET status = 'submitting', lease_owner = p_worker,
                        lease_expires_at = p_lease_until, started_at = p_now, updated_at = p_now
                    WHERE id = v_picked AND status = 'queued'
                    RETURNING * INTO v_claimed;
                    EXIT WHEN FOUND;
                END LOOP;
                IF v_picked IS NOT NULL THEN
                    -- The claim's trigger counted the job under the guild's row lock: over
                    -- the cap means another provider's claim took the guild's last slot.
                    SELECT running > max_running INTO v_over
                    FROM guild_load WHERE guild_id = v_lane.guild_id;
                    IF v_over THEN
                        RAISE EXCEPTION 'guild % is full', v_lane.guild_id USING ERRCODE = 'KX001';
                    END IF;
                    IF p_slots IS NOT NULL AND v_tokens IS NOT NULL THEN
                        UPDATE provider_accounts SET tokens = v_tokens - 1.0,
                            stamp = GREATEST(stamp, p_now)
                        WHERE provider = p_provider;
                    END IF;
                    RETURN NEXT v_claimed;
                    RETURN;
                END IF;
            EXCEPTION WHEN SQLSTATE 'KX001' THEN
                NULL;  -- undone up to this guild: try the next one
            END;
        END LOOP;
        EXIT WHEN v_page < 32;
        v_offset := v_offset + 32;
    END LOOP;
    IF v_released + p_owed > 0 THEN
        PERFORM pg_notify('kontext_jobs', 'freed:' || p_provider);
    END IF;
    RETURN;
END;
$$;
