-- Users, sessions, groups, client subscriptions and client event streams.
-- Timestamps are Unix milliseconds; documents are JSON text (the sqlx Any driver carries
-- only basic types, and the same queries run on PostgreSQL).
CREATE TABLE users (
    mc_service_id TEXT PRIMARY KEY,
    profile       TEXT NOT NULL,
    credential    TEXT NOT NULL
);

CREATE TABLE sessions (
    session_id    TEXT PRIMARY KEY,
    token_hash    TEXT NOT NULL UNIQUE,
    mc_service_id TEXT NOT NULL,
    client_id     TEXT NOT NULL,
    logged_on_at  BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    UNIQUE (mc_service_id, client_id)
);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

CREATE TABLE groups (
    group_id TEXT PRIMARY KEY,
    version  BIGINT NOT NULL,
    record   TEXT NOT NULL
);

CREATE TABLE group_subscriptions (
    session_id TEXT NOT NULL,
    group_id   TEXT NOT NULL,
    PRIMARY KEY (session_id, group_id)
);
CREATE INDEX group_subscriptions_by_group ON group_subscriptions (group_id);

CREATE TABLE client_events (
    event_id   BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    session_id TEXT NOT NULL,
    event      TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX client_events_by_session ON client_events (session_id, event_id);
