-- Why a job went to its provider, kept as a catalog text (JSON: a key and its parameters) so
-- that Info words it in its reader's language. route_reason keeps the English words; rows
-- from before this version have only those (NULL here).
ALTER TABLE jobs ADD COLUMN route_text TEXT;
