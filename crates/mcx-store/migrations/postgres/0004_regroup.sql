-- Preconfigured regroups an MC service server takes part in, and the clients it
-- affiliated to each regroup group.
CREATE TABLE regroups (
    regroup_group_id TEXT PRIMARY KEY,
    record           TEXT NOT NULL,
    updated_at       BIGINT NOT NULL
);

CREATE TABLE regroup_members (
    regroup_group_id TEXT NOT NULL,
    mc_service_id    TEXT NOT NULL,
    client_id        TEXT NOT NULL,
    acknowledged     BIGINT NOT NULL,
    PRIMARY KEY (regroup_group_id, mc_service_id, client_id)
);
