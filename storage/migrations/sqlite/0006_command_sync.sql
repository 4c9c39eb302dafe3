-- What the bot last registered with Discord: a hash of the command tree per scope ('global'
-- or 'guild:<id>'), so a start re-registers the commands only when they changed.

CREATE TABLE command_sync (
    scope     TEXT PRIMARY KEY,
    digest    TEXT NOT NULL,
    synced_at REAL NOT NULL
);
