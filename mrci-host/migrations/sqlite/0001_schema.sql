-- The MRCI schema (COMMANDS.md §5.5, group model). Text is UTF-8; ids are BLOBs of the wire
-- widths; times are Unix seconds.

CREATE TABLE groups (
    group_id    INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE COLLATE NOCASE,
    host_rank   INTEGER NOT NULL CHECK (host_rank >= 1)
);

CREATE TABLE users (
    user_id          BLOB PRIMARY KEY CHECK (length(user_id) = 32),
    user_name        TEXT NOT NULL UNIQUE COLLATE NOCASE,
    email_address    TEXT UNIQUE COLLATE NOCASE,
    display_name     TEXT NOT NULL DEFAULT '',
    pw_hash          TEXT NOT NULL,
    group_id         INTEGER NOT NULL REFERENCES groups(group_id) ON DELETE RESTRICT,
    new_password_req INTEGER NOT NULL DEFAULT 0,
    new_name_req     INTEGER NOT NULL DEFAULT 0,
    locked_until     INTEGER,
    failed_logins    INTEGER NOT NULL DEFAULT 0,
    lock_count       INTEGER NOT NULL DEFAULT 0,
    email_verified   INTEGER NOT NULL DEFAULT 0,
    protected        INTEGER NOT NULL DEFAULT 0,
    time_stamp       INTEGER NOT NULL
);

CREATE TABLE auth_log (
    id           INTEGER PRIMARY KEY,
    time_stamp   INTEGER NOT NULL,
    ip_address   TEXT NOT NULL,
    app_name     TEXT NOT NULL DEFAULT '',
    user_id      BLOB REFERENCES users(user_id) ON DELETE SET NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('login', 'recovery')),
    accepted     INTEGER NOT NULL,
    reason       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX auth_log_user ON auth_log(user_id, time_stamp);

CREATE TABLE ip_history (
    id          INTEGER PRIMARY KEY,
    time_stamp  INTEGER NOT NULL,
    ip_address  TEXT NOT NULL,
    session_id  TEXT NOT NULL,
    app_name    TEXT NOT NULL DEFAULT '',
    log_entry   TEXT NOT NULL
);
CREATE INDEX ip_history_ip ON ip_history(ip_address, time_stamp);

CREATE TABLE recovery_tokens (
    user_id     BLOB PRIMARY KEY REFERENCES users(user_id) ON DELETE CASCADE,
    token_hash  BLOB NOT NULL,
    expires_at  INTEGER NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE email_verifications (
    user_id     BLOB PRIMARY KEY REFERENCES users(user_id) ON DELETE CASCADE,
    code_hash   BLOB NOT NULL,
    expires_at  INTEGER NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE channels (
    channel_id    INTEGER PRIMARY KEY CHECK (channel_id >= 1),
    channel_name  TEXT NOT NULL UNIQUE COLLATE NOCASE
);

CREATE TABLE channel_members (
    channel_id      INTEGER NOT NULL REFERENCES channels(channel_id) ON DELETE CASCADE,
    user_id         BLOB NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
    pending_invite  INTEGER NOT NULL DEFAULT 0,
    access_level    INTEGER NOT NULL CHECK (access_level BETWEEN 1 AND 4),
    PRIMARY KEY (channel_id, user_id)
);
CREATE UNIQUE INDEX one_owner_per_channel ON channel_members(channel_id) WHERE access_level = 1;

CREATE TABLE sub_channels (
    channel_id           INTEGER NOT NULL REFERENCES channels(channel_id) ON DELETE CASCADE,
    sub_channel_id       INTEGER NOT NULL CHECK (sub_channel_id BETWEEN 0 AND 255),
    sub_channel_name     TEXT NOT NULL COLLATE NOCASE,
    lowest_access_level  INTEGER NOT NULL DEFAULT 4 CHECK (lowest_access_level BETWEEN 1 AND 5),
    active_updates       INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (channel_id, sub_channel_id),
    UNIQUE (channel_id, sub_channel_name)
);

CREATE TABLE read_only_flags (
    channel_id      INTEGER NOT NULL REFERENCES channels(channel_id) ON DELETE CASCADE,
    sub_channel_id  INTEGER NOT NULL,
    access_level    INTEGER NOT NULL,
    PRIMARY KEY (channel_id, sub_channel_id, access_level)
);

CREATE TABLE command_ranks (
    module        TEXT NOT NULL,
    command_name  TEXT NOT NULL COLLATE NOCASE,
    host_rank     INTEGER NOT NULL CHECK (host_rank >= 1),
    PRIMARY KEY (module, command_name)
);

CREATE TABLE modules (
    module_executable  TEXT PRIMARY KEY
);

CREATE TABLE ban_list (
    ip_address  TEXT PRIMARY KEY,
    time_stamp  INTEGER NOT NULL,
    expires_at  INTEGER
);

-- COMMANDS.md §1.2, spec/README.md "Model": default groups, and no default account.
INSERT INTO groups (group_id, name, host_rank) VALUES (1, 'admin', 1), (2, 'users', 2);
