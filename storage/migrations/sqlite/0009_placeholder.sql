-- Placeholder for version 9 (another branch owns it). Replace this file with that branch's
-- 0009 migration when merging; it changes nothing.
SELECT 1;
