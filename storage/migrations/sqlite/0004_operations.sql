-- Operating the bot: providers paused for everyone (a refused key, no credits), servers the
-- bot left (their data is deleted after a grace period), a daily credit cap per server, and
-- the indexes retention walks.

CREATE TABLE provider_pauses (
    provider  TEXT PRIMARY KEY,
    code      TEXT NOT NULL,  -- 'auth' or 'credits'
    detail    TEXT,           -- what the provider said (for the operator; never a secret)
    paused_at REAL NOT NULL
);

CREATE TABLE departed_guilds (
    guild_id INTEGER PRIMARY KEY,
    left_at  REAL NOT NULL
);

ALTER TABLE guild_settings ADD COLUMN daily_credit_cap REAL NOT NULL DEFAULT 0;

CREATE INDEX jobs_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX outputs_created ON outputs (created_at);
