-- Operator locks (lock_acct) are separate from the temporary lock after failed logins.
ALTER TABLE users ADD COLUMN locked INTEGER NOT NULL DEFAULT 0;
