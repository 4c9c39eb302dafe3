-- Why a job (or one image of a batch) failed, kept as a catalog text (JSON: a key and its
-- parameters) so that any process words it later in its reader's language. error_message
-- keeps the English words; rows from before this version have only those (NULL here).
ALTER TABLE jobs ADD COLUMN error_text TEXT;
ALTER TABLE batch_items ADD COLUMN error_text TEXT;
