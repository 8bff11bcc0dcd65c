-- Registration and password-reset links. Only the SHA-256 of a link's token is stored; a link is
-- used, superseded (a newer link of the same kind was sent) or expired, or still valid.
CREATE TABLE link_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT,
    superseded_at BIGINT
);
CREATE INDEX link_tokens_by_user ON link_tokens (user_id, kind, created_at);

-- The transactional outbox: a mail is written in the same transaction as the change that causes
-- it, and a worker delivers it. A worker claims a row by setting locked_until (a lease), so two
-- instances never send one mail at the same time; sent rows keep sent_at.
CREATE TABLE mail_outbox (
    id TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL,
    recipient TEXT NOT NULL,
    subject TEXT NOT NULL,
    body_text TEXT NOT NULL,
    body_html TEXT NOT NULL,
    client_id TEXT,
    user_id TEXT,
    kind TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    locked_until BIGINT,
    sent_at BIGINT,
    last_error TEXT
);
CREATE INDEX mail_outbox_due ON mail_outbox (sent_at, next_attempt_at);
