-- Operating the host (issue 15): why an address was banned (an operator's note, or the
-- automatic ban after failed logins), and the runtime settings `host_config` changed, which
-- win over the configuration file until they are unset.
ALTER TABLE ban_list ADD COLUMN reason TEXT NOT NULL DEFAULT '';
CREATE TABLE host_settings (
    key         TEXT PRIMARY KEY,
    value       TEXT NOT NULL,
    changed_at  INTEGER NOT NULL
);
-- The automatic ban counts an address's failed logins.
CREATE INDEX auth_log_ip ON auth_log(ip_address, time_stamp);
