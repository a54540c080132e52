-- The host's record, per partner user and group, of the serving system's generation of
-- the last (de-)affiliation it applied: an older request arriving later is ignored.
CREATE TABLE hosted_generations (
    group_id      TEXT NOT NULL,
    mc_service    TEXT NOT NULL,
    mc_service_id TEXT NOT NULL,
    generation    BIGINT NOT NULL,
    PRIMARY KEY (group_id, mc_service, mc_service_id)
);
