-- How a module added with add_mod is listed: 'session' (seed 001: by every session, with its
-- shared memory, at creation, login and logout) or 'once' (host-wide, for a module whose list
-- never depends on the session).
ALTER TABLE modules ADD COLUMN listing TEXT NOT NULL DEFAULT 'session';
