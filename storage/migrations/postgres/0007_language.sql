-- Placeholder for the language migration (another branch owns version 7). Replace this file
-- with that branch's 0007_language.sql when merging; it changes nothing.
SELECT 1;
