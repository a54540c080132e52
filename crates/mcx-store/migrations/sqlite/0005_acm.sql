-- ACM exchanges (TR 23.700-38): the primary's outgoing requests and the partner's
-- incoming ones, with whether each is pending data for its owner; and groups added to
-- users' profiles by the ACM closed loop (kept apart from the configured profile, which
-- the configuration file rewrites at every start).
CREATE TABLE acm_exchanges (
    request_id TEXT NOT NULL,
    role       TEXT NOT NULL,
    owner      TEXT NOT NULL,
    state      TEXT NOT NULL,
    pending    BIGINT NOT NULL,
    record     TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (request_id, role)
);
CREATE INDEX acm_exchanges_by_owner ON acm_exchanges (owner, role);

CREATE TABLE profile_additions (
    mc_service_id TEXT NOT NULL,
    mc_service    TEXT NOT NULL,
    group_id      TEXT NOT NULL,
    PRIMARY KEY (mc_service_id, mc_service, group_id)
);
