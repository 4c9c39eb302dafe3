-- A guild may allow several providers (a JSON list, order = preference); each job records
-- why it went to its provider.
ALTER TABLE guild_settings ADD COLUMN providers TEXT NOT NULL DEFAULT '[]';
ALTER TABLE jobs ADD COLUMN route_reason TEXT;
