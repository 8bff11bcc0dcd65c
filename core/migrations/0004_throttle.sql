-- Throttling counters, shared by all instances. A row per account key (client + user name, also
-- for names that do not exist), per second-factor user and per source IP.
CREATE TABLE throttle (
    key TEXT PRIMARY KEY,
    failures BIGINT NOT NULL DEFAULT 0,
    window_start BIGINT NOT NULL,
    last_at BIGINT NOT NULL,
    blocked_until BIGINT NOT NULL DEFAULT 0,
    client_id TEXT,
    username TEXT,
    notified_at BIGINT
);
CREATE INDEX throttle_by_client ON throttle (client_id);
