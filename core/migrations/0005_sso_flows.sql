-- Single sign-on round trips in progress. A row is made when a browser is sent to its client's
-- identity provider and deleted when the browser comes back (state is single use). The browser
-- holds the flow's secret in a short-lived cookie; the row is keyed by its SHA-256.
CREATE TABLE sso_flows (
    id_hash TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    issuer TEXT NOT NULL,
    state TEXT NOT NULL,
    nonce TEXT NOT NULL,
    pkce_verifier TEXT NOT NULL,
    email TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE INDEX sso_flows_by_age ON sso_flows (created_at);
CREATE INDEX client_sso_domains_by_client ON client_sso_domains (client_id);
