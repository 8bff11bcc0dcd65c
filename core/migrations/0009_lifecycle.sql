-- Data lifecycle: deactivated users are deleted after their client's retention, inactive users
-- may be deactivated, and housekeeping keeps every table bounded.

-- When a user was deactivated (the deletion date counts from it), was last active (logged in, or
-- was created or reactivated: the inactivity rule counts from it), and was warned of either (so
-- that each warning is sent once).
ALTER TABLE users ADD COLUMN deactivated_at BIGINT;
ALTER TABLE users ADD COLUMN last_activity_at BIGINT;
ALTER TABLE users ADD COLUMN inactivity_warned_at BIGINT;
ALTER TABLE users ADD COLUMN deletion_warned_at BIGINT;
-- Users deactivated before this migration count from their last change.
UPDATE users SET deactivated_at = updated_at WHERE status = 'deactivated';
UPDATE users SET last_activity_at = updated_at;
CREATE INDEX users_by_deactivation ON users (deactivated_at);
CREATE INDEX users_by_activity ON users (client_id, last_activity_at);

-- Months after which a client's deactivated users are deleted (1 to 24), and after which its users
-- without a login are deactivated (3 to 36; NULL: never).
ALTER TABLE clients ADD COLUMN deletion_months BIGINT NOT NULL DEFAULT 6;
ALTER TABLE clients ADD COLUMN inactivity_months BIGINT;

-- Work that one instance at a time does (housekeeping): a row per kind of work, taken by setting
-- holder and until in one conditional UPDATE, as the outbox's lease on a mail.
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT,
    until BIGINT NOT NULL DEFAULT 0
);
INSERT INTO leases (name, until) VALUES ('housekeeping', 0);

-- What housekeeping looks rows up by.
CREATE INDEX sessions_by_last_seen ON sessions (last_seen_at);
CREATE INDEX sessions_by_created ON sessions (created_at);
CREATE INDEX login_challenges_by_expiry ON login_challenges (expires_at);
CREATE INDEX link_tokens_by_expiry ON link_tokens (expires_at);
CREATE INDEX throttle_by_last_attempt ON throttle (last_at);
CREATE INDEX mail_outbox_by_created ON mail_outbox (created_at);
CREATE INDEX mail_outbox_by_user ON mail_outbox (user_id);
CREATE INDEX audit_by_time ON audit_events (created_at);
CREATE INDEX audit_by_actor ON audit_events (actor_user_id);
CREATE INDEX audit_by_subject ON audit_events (subject_user_id);
