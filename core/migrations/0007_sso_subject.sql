-- The identity at the client's identity provider (the ID token's `iss` and `sub`) that an account
-- is bound to on its first SSO login. A later login whose email matches but whose issuer or
-- subject differs is refused until an administrator releases the binding (both NULL again).
ALTER TABLE users ADD COLUMN sso_issuer TEXT;
ALTER TABLE users ADD COLUMN sso_subject TEXT;
CREATE INDEX users_by_sso_subject ON users (client_id, sso_subject);
