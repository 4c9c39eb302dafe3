-- Kontext Bot schema version 1 for SQLite.
-- Queue bookkeeping (lanes, running counts, the event log) is kept by triggers, so every
-- write path, including ones added later, keeps the counters the fair claim relies on.

CREATE TABLE guild_settings (
    guild_id             INTEGER PRIMARY KEY,
    provider             TEXT,
    model                TEXT,
    default_aspect_ratio TEXT,
    safety_tolerance     INTEGER NOT NULL,
    max_user_active      INTEGER NOT NULL,
    max_guild_running    INTEGER NOT NULL,
    max_guild_queue      INTEGER NOT NULL,
    daily_quota          INTEGER NOT NULL,
    nsfw_policy          TEXT NOT NULL,
    allowed_role_ids     TEXT NOT NULL DEFAULT '[]',
    allowed_channel_ids  TEXT NOT NULL DEFAULT '[]',
    gallery_channel_id   INTEGER,
    iterate_policy       TEXT NOT NULL,
    updated_at           REAL NOT NULL
);

CREATE TABLE remix_channels (
    channel_id   INTEGER PRIMARY KEY,
    guild_id     INTEGER NOT NULL,
    style_suffix TEXT,
    created_at   REAL NOT NULL
);
CREATE INDEX remix_channels_guild ON remix_channels (guild_id);

-- Bytes live in files under the data folder (blobs/<2 hex>/<sha256>); this is the catalogue.
CREATE TABLE blobs (
    content_hash TEXT PRIMARY KEY,
    size         INTEGER NOT NULL,
    created_at   REAL NOT NULL
);

CREATE TABLE jobs (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    guild_id            INTEGER NOT NULL,
    channel_id          INTEGER NOT NULL,
    thread_id           INTEGER,
    user_id             INTEGER NOT NULL,
    kind                TEXT NOT NULL,
    prompt              TEXT NOT NULL,
    params              TEXT NOT NULL,
    provider            TEXT NOT NULL,
    model               TEXT,
    parent_output_id    INTEGER REFERENCES outputs (id) ON DELETE SET NULL,
    reply_to_message_id INTEGER,
    status              TEXT NOT NULL CHECK (status IN ('queued', 'submitting', 'running',
                            'downloading', 'delivering', 'done', 'failed', 'moderated',
                            'cancelled', 'expired')),
    attempts            INTEGER NOT NULL DEFAULT 0,
    provider_handle     TEXT,
    result_json         TEXT,
    error_code          TEXT,
    error_message       TEXT,
    credits             REAL,
    cost                REAL,
    status_message_id   INTEGER,
    created_at          REAL NOT NULL,
    updated_at          REAL NOT NULL,
    started_at          REAL,
    finished_at         REAL,
    deadline_at         REAL,
    run_after           REAL,
    lease_owner         TEXT,
    lease_expires_at    REAL
);
CREATE INDEX jobs_queued ON jobs (provider, guild_id, user_id, id) WHERE status = 'queued';
CREATE INDEX jobs_open ON jobs (guild_id, user_id)
    WHERE status IN ('queued', 'submitting', 'running', 'downloading', 'delivering');
CREATE INDEX jobs_leased ON jobs (lease_expires_at) WHERE lease_owner IS NOT NULL;
CREATE INDEX jobs_user_created ON jobs (guild_id, user_id, created_at);
CREATE INDEX jobs_done ON jobs (provider, finished_at) WHERE status = 'done';
CREATE INDEX jobs_parent ON jobs (parent_output_id) WHERE parent_output_id IS NOT NULL;

CREATE TABLE job_events (
    id     INTEGER PRIMARY KEY,
    job_id INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    status TEXT NOT NULL,
    at     REAL NOT NULL
);
CREATE INDEX job_events_job ON job_events (job_id, id);

CREATE TABLE job_references (
    job_id        INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    position      INTEGER NOT NULL,
    source        TEXT NOT NULL,
    content_hash  TEXT NOT NULL,
    url           TEXT,
    message_id    INTEGER,
    attachment_id INTEGER,
    output_id     INTEGER,
    width         INTEGER,
    height        INTEGER,
    PRIMARY KEY (job_id, position)
);
CREATE INDEX job_references_blob ON job_references (content_hash);

CREATE TABLE outputs (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id        INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    image_index   INTEGER NOT NULL,
    content_hash  TEXT NOT NULL,
    size          INTEGER NOT NULL,
    format        TEXT NOT NULL,
    width         INTEGER NOT NULL,
    height        INTEGER NOT NULL,
    nsfw          INTEGER NOT NULL DEFAULT 0,
    channel_id    INTEGER,
    message_id    INTEGER,
    attachment_id INTEGER,
    created_at    REAL NOT NULL,
    expires_at    REAL,
    UNIQUE (job_id, image_index)
);
CREATE INDEX outputs_blob ON outputs (content_hash);

CREATE TABLE message_refs (
    message_id INTEGER PRIMARY KEY,
    channel_id INTEGER NOT NULL,
    job_id     INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    output_id  INTEGER REFERENCES outputs (id) ON DELETE SET NULL,
    kind       TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX message_refs_job ON message_refs (job_id);

CREATE TABLE usage_daily (
    guild_id INTEGER NOT NULL,
    day      TEXT NOT NULL,
    user_id  INTEGER NOT NULL,
    jobs     INTEGER NOT NULL DEFAULT 0,
    images   INTEGER NOT NULL DEFAULT 0,
    credits  REAL NOT NULL DEFAULT 0,
    cost     REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (guild_id, day, user_id)
);

-- Fair claim: one lane per (provider, guild) and per (provider, guild, user); last_served
-- comes from serve_counter, so the least recently served lane goes next (0: never served).
CREATE TABLE queue_lanes (
    provider    TEXT NOT NULL,
    guild_id    INTEGER NOT NULL,
    queued      INTEGER NOT NULL DEFAULT 0,
    last_served INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (provider, guild_id)
);
CREATE INDEX queue_lanes_next ON queue_lanes (provider, last_served, guild_id) WHERE queued > 0;
CREATE INDEX queue_lanes_guild ON queue_lanes (guild_id);

CREATE TABLE queue_user_lanes (
    provider    TEXT NOT NULL,
    guild_id    INTEGER NOT NULL,
    user_id     INTEGER NOT NULL,
    queued      INTEGER NOT NULL DEFAULT 0,
    last_served INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (provider, guild_id, user_id)
);
CREATE INDEX queue_user_lanes_next ON queue_user_lanes (provider, guild_id, last_served, user_id)
    WHERE queued > 0;

CREATE TABLE guild_load (
    guild_id    INTEGER PRIMARY KEY,
    running     INTEGER NOT NULL DEFAULT 0,
    max_running INTEGER NOT NULL DEFAULT 4
);

CREATE TABLE serve_counter (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    value INTEGER NOT NULL
);
INSERT INTO serve_counter (id, value) VALUES (1, 0);

CREATE TRIGGER jobs_terminal_is_final BEFORE UPDATE OF status ON jobs
WHEN OLD.status IN ('done', 'failed', 'moderated', 'cancelled', 'expired')
    AND NEW.status <> OLD.status
BEGIN
    SELECT RAISE(ABORT, 'a finished job never changes status');
END;

CREATE TRIGGER jobs_inserted AFTER INSERT ON jobs
BEGIN
    INSERT INTO job_events (job_id, status, at) VALUES (NEW.id, NEW.status, NEW.created_at);
    INSERT INTO guild_load (guild_id) VALUES (NEW.guild_id) ON CONFLICT (guild_id) DO NOTHING;
    INSERT INTO queue_lanes (provider, guild_id, queued)
        SELECT NEW.provider, NEW.guild_id, 1 WHERE NEW.status = 'queued'
        ON CONFLICT (provider, guild_id) DO UPDATE SET queued = queued + 1;
    INSERT INTO queue_user_lanes (provider, guild_id, user_id, queued)
        SELECT NEW.provider, NEW.guild_id, NEW.user_id, 1 WHERE NEW.status = 'queued'
        ON CONFLICT (provider, guild_id, user_id) DO UPDATE SET queued = queued + 1;
END;

CREATE TRIGGER jobs_status_changed AFTER UPDATE OF status ON jobs
WHEN NEW.status <> OLD.status
BEGIN
    INSERT INTO job_events (job_id, status, at) VALUES (NEW.id, NEW.status, NEW.updated_at);
END;

CREATE TRIGGER jobs_left_queue AFTER UPDATE OF status, provider ON jobs
WHEN OLD.status = 'queued' AND (NEW.status <> 'queued' OR NEW.provider <> OLD.provider)
BEGIN
    UPDATE queue_lanes SET queued = queued - 1
        WHERE provider = OLD.provider AND guild_id = OLD.guild_id;
    UPDATE queue_user_lanes SET queued = queued - 1
        WHERE provider = OLD.provider AND guild_id = OLD.guild_id AND user_id = OLD.user_id;
END;

CREATE TRIGGER jobs_joined_queue AFTER UPDATE OF status, provider ON jobs
WHEN NEW.status = 'queued' AND (OLD.status <> 'queued' OR NEW.provider <> OLD.provider)
BEGIN
    INSERT INTO queue_lanes (provider, guild_id, queued) VALUES (NEW.provider, NEW.guild_id, 1)
        ON CONFLICT (provider, guild_id) DO UPDATE SET queued = queued + 1;
    INSERT INTO queue_user_lanes (provider, guild_id, user_id, queued)
        VALUES (NEW.provider, NEW.guild_id, NEW.user_id, 1)
        ON CONFLICT (provider, guild_id, user_id) DO UPDATE SET queued = queued + 1;
END;

CREATE TRIGGER jobs_claimed AFTER UPDATE OF status ON jobs
WHEN OLD.status = 'queued' AND NEW.status = 'submitting'
BEGIN
    UPDATE serve_counter SET value = value + 1 WHERE id = 1;
    UPDATE queue_lanes SET last_served = (SELECT value FROM serve_counter WHERE id = 1)
        WHERE provider = OLD.provider AND guild_id = OLD.guild_id;
    UPDATE queue_user_lanes SET last_served = (SELECT value FROM serve_counter WHERE id = 1)
        WHERE provider = OLD.provider AND guild_id = OLD.guild_id AND user_id = OLD.user_id;
END;

CREATE TRIGGER jobs_started AFTER UPDATE OF status ON jobs
WHEN NEW.status IN ('submitting', 'running', 'downloading', 'delivering')
    AND OLD.status NOT IN ('submitting', 'running', 'downloading', 'delivering')
BEGIN
    UPDATE guild_load SET running = running + 1 WHERE guild_id = NEW.guild_id;
END;

CREATE TRIGGER jobs_stopped AFTER UPDATE OF status ON jobs
WHEN OLD.status IN ('submitting', 'running', 'downloading', 'delivering')
    AND NEW.status NOT IN ('submitting', 'running', 'downloading', 'delivering')
BEGIN
    UPDATE guild_load SET running = running - 1 WHERE guild_id = NEW.guild_id;
END;
