-- Schema version 2 adds what several processes sharing a PostgreSQL database coordinate
-- through (provider account rows, notifications). A SQLite database serves one process,
-- whose engine holds the provider accounts itself: nothing changes here, and the number
-- keeps both backends at the same schema version.
SELECT 1;
