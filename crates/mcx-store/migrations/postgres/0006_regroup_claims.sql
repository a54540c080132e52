-- Which regroup holds a group: a constituent group homed here, or the regroup group ID
-- itself. The primary key makes "not regrouped already" (TS 23.280 10.15.3.3.1 step 4a)
-- and the mark one atomic step: of simultaneous regroups of one group exactly one
-- inserts its row.
CREATE TABLE regroup_claims (
    group_id         TEXT PRIMARY KEY,
    regroup_group_id TEXT NOT NULL
);

CREATE INDEX regroup_claims_by_regroup ON regroup_claims (regroup_group_id);
