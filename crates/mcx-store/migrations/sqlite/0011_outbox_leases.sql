-- Which node of a system delivers a partner's outbox lane, until when (issue 17: several
-- nodes on one PostgreSQL; each lane is delivered by one node at a time, and a dead
-- node's lease is taken over once it has passed). A single node on SQLite never writes it.
CREATE TABLE outbox_leases (
    partner     TEXT NOT NULL,
    lane        TEXT NOT NULL,
    holder      TEXT NOT NULL,
    held_until  BIGINT NOT NULL,
    PRIMARY KEY (partner, lane)
);
