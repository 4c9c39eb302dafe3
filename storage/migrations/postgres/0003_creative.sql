-- Batches, styles, member preferences and community controls.

-- How many images a job counts for against the per-user limits and the daily quota: its
-- requested image count (a pick reposts an image already made, so it counts for none).
ALTER TABLE jobs ADD COLUMN image_count INTEGER GENERATED ALWAYS AS (
    CASE WHEN kind = 'pick' THEN 0
         ELSE COALESCE((params ->> 'num_images')::integer, 1) END) STORED;

-- An image of a batch is picked once: a second press finds the first pick.
CREATE UNIQUE INDEX jobs_one_pick ON jobs (parent_output_id) WHERE kind = 'pick';

-- One row per image of a batch that is made by separate provider requests, so each request's
-- handle is saved before it is polled and a restart never submits an accepted one again.
CREATE TABLE batch_items (
    job_id          BIGINT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    item_index      INTEGER NOT NULL,
    seed            BIGINT,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed')),
    provider_handle TEXT,
    result_json     TEXT,
    error_code      TEXT,
    error_message   TEXT,
    updated_at      DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (job_id, item_index)
);

CREATE TABLE guild_styles (
    guild_id   BIGINT NOT NULL,
    name       TEXT NOT NULL,
    prompt     TEXT NOT NULL,
    created_by BIGINT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (guild_id, name)
);

CREATE TABLE member_prefs (
    guild_id   BIGINT NOT NULL,
    user_id    BIGINT NOT NULL,
    prefs      TEXT NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (guild_id, user_id)
);

CREATE TABLE guild_creative (
    guild_id   BIGINT PRIMARY KEY,
    settings   TEXT NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);
