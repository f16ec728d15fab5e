-- Failed logins per (account, address): the temporary lock after repeated failures holds
-- one address out of one account, so guessing from elsewhere never locks the owner out.
-- users.failed_logins / users.locked_until now count and pace failures account-wide.
CREATE TABLE login_failures (
    user_id BYTEA NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
    ip_address TEXT NOT NULL,
    failures BIGINT NOT NULL DEFAULT 0,
    lock_count BIGINT NOT NULL DEFAULT 0,
    locked_until BIGINT,
    last_failure BIGINT NOT NULL,
    PRIMARY KEY (user_id, ip_address)
);
