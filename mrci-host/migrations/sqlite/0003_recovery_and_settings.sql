-- Mail templates and other operator settings changed through commands (COMMANDS.md §5.4);
-- a missing key means the built-in default.
CREATE TABLE settings (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
-- When a recovery token was issued, so a new mail is not sent too soon after the last.
ALTER TABLE recovery_tokens ADD COLUMN issued_at INTEGER NOT NULL DEFAULT 0;
