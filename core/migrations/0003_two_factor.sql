-- Recovery codes for two-factor authentication: ten per user, stored as an HMAC keyed with the
-- deployment's SECRET_KEY (the codes are short, so a plain hash would be easy to reverse), single use.
CREATE TABLE recovery_codes (
    code_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX recovery_codes_by_user ON recovery_codes (user_id);
