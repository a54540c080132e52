-- Interconnection: the durable outbox of requests to partners, the primary's records of
-- each group's partners, a partner's links to the primaries of groups it uses, and the
-- answers already given to partners' transactions (for deduplication).
CREATE TABLE outbox (
    outbox_id       INTEGER PRIMARY KEY AUTOINCREMENT,
    partner         TEXT NOT NULL,
    transaction_id  TEXT NOT NULL,
    request         TEXT NOT NULL,
    attempts        BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    last_error      TEXT,
    created_at      BIGINT NOT NULL
);
CREATE INDEX outbox_by_partner ON outbox (partner, outbox_id);

CREATE TABLE partner_records (
    group_id   TEXT NOT NULL,
    partner    TEXT NOT NULL,
    state      TEXT NOT NULL,
    version    BIGINT NOT NULL,
    detail     TEXT,
    subscribed BIGINT NOT NULL,
    shared     BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (group_id, partner)
);

CREATE TABLE primary_links (
    group_id   TEXT PRIMARY KEY,
    state      TEXT NOT NULL,
    detail     TEXT,
    updated_at BIGINT NOT NULL
);

CREATE TABLE inbound_answers (
    partner        TEXT NOT NULL,
    transaction_id TEXT NOT NULL,
    answer         TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    PRIMARY KEY (partner, transaction_id)
);
