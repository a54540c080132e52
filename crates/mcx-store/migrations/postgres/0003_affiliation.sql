-- Affiliation (TS 23.280 §10.8): the serving server's client affiliations (a partner
-- group's is pending until its host confirms), guarded per user by a generation; the
-- hosting server's record of users affiliated to its groups; the GMS's view of
-- affiliated members; and remote change records.
ALTER TABLE users ADD COLUMN affiliation_generation BIGINT NOT NULL DEFAULT 0;

CREATE TABLE affiliations (
    mc_service_id TEXT NOT NULL,
    mc_service    TEXT NOT NULL,
    group_id      TEXT NOT NULL,
    client_id     TEXT NOT NULL,
    pending       BIGINT NOT NULL,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (mc_service_id, mc_service, group_id, client_id)
);
CREATE INDEX affiliations_by_group ON affiliations (group_id);

CREATE TABLE hosted_affiliations (
    group_id      TEXT NOT NULL,
    mc_service    TEXT NOT NULL,
    mc_service_id TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (group_id, mc_service, mc_service_id)
);

CREATE TABLE gms_affiliations (
    group_id      TEXT NOT NULL,
    mc_service    TEXT NOT NULL,
    mc_service_id TEXT NOT NULL,
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (group_id, mc_service, mc_service_id)
);

CREATE TABLE affiliation_changes (
    change_id         TEXT PRIMARY KEY,
    requester_session TEXT NOT NULL,
    state             TEXT NOT NULL,
    deadline          BIGINT NOT NULL,
    record            TEXT NOT NULL,
    version           BIGINT NOT NULL
);
CREATE INDEX affiliation_changes_by_deadline ON affiliation_changes (state, deadline);
