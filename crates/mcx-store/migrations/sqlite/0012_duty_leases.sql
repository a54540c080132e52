-- Which node of a system does a duty of timed work for all (remote change and regroup
-- deadlines, session expiry), until when (issue 17: one node at a time; a dead node's
-- duty is taken over once its lease has passed). A single node on SQLite never writes it.
CREATE TABLE duty_leases (
    duty        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    held_until  BIGINT NOT NULL
);
