-- promio.connect as OpenID Provider for the product's applications (see server/src/oauth).
-- Tokens, codes and request ids are stored as SHA-256 hex only; flags are 0/1 (BIGINT).

-- A registered application (relying party). `secret_hash` NULL: a public client.
CREATE TABLE oauth_apps (
    client_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    secret_hash TEXT,
    -- JSON arrays of exact strings.
    redirect_uris TEXT NOT NULL,
    post_logout_redirect_uris TEXT NOT NULL,
    backchannel_logout_uri TEXT,
    -- The one company whose users it takes; NULL: any.
    client_row_id TEXT REFERENCES clients (id) ON DELETE CASCADE,
    pkce_required BIGINT NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL
);

-- ID-token signing keys (RS256). The private key is PKCS#8 DER sealed with a key derived from
-- SECRET_KEY; a key signs from `signs_from` and is published from `created_at` until its tokens
-- have expired after `retired_at`.
CREATE TABLE oauth_keys (
    kid TEXT PRIMARY KEY,
    private_sealed TEXT NOT NULL,
    public_jwk TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    signs_from BIGINT NOT NULL,
    retired_at BIGINT
);

-- An authorization request waiting for a login.
CREATE TABLE oauth_requests (
    id_hash TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES oauth_apps (client_id) ON DELETE CASCADE,
    params TEXT NOT NULL,
    -- prompt=login / max_age: the session must be newer than this.
    login_after BIGINT,
    created_at BIGINT NOT NULL
);

CREATE TABLE oauth_codes (
    code_hash TEXT PRIMARY KEY,
    grant_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    session_hash TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    scope TEXT NOT NULL,
    nonce TEXT,
    code_challenge TEXT,
    auth_time BIGINT NOT NULL,
    amr TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX oauth_codes_grant ON oauth_codes (grant_id);

-- Access and refresh tokens ('access' | 'refresh'); a refresh token's family is every token
-- rotated from the same first one (a used one presented again revokes the family).
CREATE TABLE oauth_tokens (
    token_hash TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    grant_id TEXT NOT NULL,
    family_id TEXT,
    client_id TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    scope TEXT NOT NULL,
    session_hash TEXT,
    auth_time BIGINT NOT NULL,
    amr TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT,
    revoked_at BIGINT
);
CREATE INDEX oauth_tokens_grant ON oauth_tokens (grant_id);
CREATE INDEX oauth_tokens_family ON oauth_tokens (family_id);
CREATE INDEX oauth_tokens_user ON oauth_tokens (user_id);

-- Which application took part in which session (a code was issued to it in that session).
CREATE TABLE oauth_participations (
    session_hash TEXT NOT NULL,
    client_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    sid TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (session_hash, client_id)
);
CREATE INDEX oauth_participations_user ON oauth_participations (user_id);

-- Back-channel logout tokens to deliver; a row is claimed (`claimed_until`) by one instance.
CREATE TABLE oauth_logout_outbox (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    uri TEXT NOT NULL,
    logout_token TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    claimed_until BIGINT,
    created_at BIGINT NOT NULL,
    sent_at BIGINT
);

-- How the person logged in (RFC 8176), a JSON array: ["pwd"], ["pwd","otp","mfa"],
-- ["pwd","hwk","mfa"], ["hwk"]; [] after SSO. NULL (older sessions) counts as [].
ALTER TABLE sessions ADD COLUMN amr TEXT;
