-- The language a server pins for the bot: 'auto' (each member's or the server's Discord
-- language), 'en', 'de' or 'ja'. A job's own language is kept in its params.
ALTER TABLE guild_settings ADD COLUMN language TEXT NOT NULL DEFAULT 'auto';
