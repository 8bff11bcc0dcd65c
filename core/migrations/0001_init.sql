-- One schema for SQLite and PostgreSQL: only types both read the same way through sqlx's Any
-- driver. Ids are UUID text, times are Unix seconds (BIGINT), flags are 0/1 (BIGINT).

CREATE TABLE clients (
    id TEXT PRIMARY KEY,
    company_id TEXT NOT NULL,
    company_key TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    registration_link_hours BIGINT NOT NULL DEFAULT 24,
    reset_link_hours BIGINT NOT NULL DEFAULT 24,
    require_2fa BIGINT NOT NULL DEFAULT 0,
    active BIGINT NOT NULL DEFAULT 1,
    sso_issuer TEXT,
    sso_client_id TEXT,
    sso_client_secret TEXT,
    sso_email_claim TEXT,
    sso_jit BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Email domains routed to a client's identity provider; a domain belongs to one client at most.
CREATE TABLE client_sso_domains (
    domain TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE
);

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients (id),
    username TEXT NOT NULL,
    username_key TEXT NOT NULL,
    email TEXT NOT NULL,
    email_key TEXT NOT NULL,
    first_name TEXT NOT NULL DEFAULT '',
    last_name TEXT NOT NULL DEFAULT '',
    role TEXT NOT NULL,
    status TEXT NOT NULL,
    language TEXT NOT NULL DEFAULT 'en',
    password_hash TEXT,
    password_changed_at BIGINT,
    totp_secret TEXT,
    totp_enabled BIGINT NOT NULL DEFAULT 0,
    totp_last_step BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (client_id, username_key)
);
CREATE INDEX users_by_email ON users (client_id, email_key);

-- Only a SHA-256 of the cookie's token is stored.
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    ip TEXT,
    user_agent TEXT
);
CREATE INDEX sessions_by_user ON sessions (user_id);

-- A password step that needs a second factor (or its enrolment) before there is a session.
CREATE TABLE login_challenges (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    failures BIGINT NOT NULL DEFAULT 0
);

-- Append-only: the application never updates or deletes these rows.
CREATE TABLE audit_events (
    id TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL,
    client_id TEXT,
    actor_user_id TEXT,
    subject_user_id TEXT,
    action TEXT NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '',
    ip TEXT
);
CREATE INDEX audit_by_client_time ON audit_events (client_id, created_at);
