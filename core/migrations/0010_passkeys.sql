-- Passkeys (WebAuthn): a user's credentials, and the ceremonies in progress.

-- A registered credential. `passkey` is webauthn-rs's Passkey as JSON: the public key, the sign
-- counter and the backup flags, updated after each use. `credential_id` is base64url.
-- `sign_count` is the highest signature counter seen: a use is only taken when its counter is
-- higher (or the authenticator keeps none, 0), so two answers at once cannot move it back.
CREATE TABLE passkeys (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    passkey TEXT NOT NULL,
    sign_count BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT
);
CREATE INDEX passkeys_by_user ON passkeys (user_id);

-- A registration or authentication begun and not yet finished: webauthn-rs's state as JSON, keyed
-- by the SHA-256 of a secret in the browser's short-lived cookie. Single use (deleted when
-- finished), void after five minutes, so any instance can finish what another began.
CREATE TABLE webauthn_ceremonies (
    id_hash TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    user_id TEXT REFERENCES users (id) ON DELETE CASCADE,
    state TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX webauthn_ceremonies_by_expiry ON webauthn_ceremonies (expires_at);

-- Operators can turn passkeys off for a client (on by default).
ALTER TABLE clients ADD COLUMN passkeys BIGINT NOT NULL DEFAULT 1;
