-- A server's moderation-log channel (NULL: none).
ALTER TABLE guild_settings ADD COLUMN modlog_channel_id BIGINT;

-- "Ping when done" is on unless a server turns it off: the stored "off" every server got by
-- default (when it could not be changed) is dropped, so those servers get the new default.
UPDATE guild_creative SET settings = (settings::jsonb - 'ping_when_done')::text;
