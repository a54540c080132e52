-- A client request waiting for a partner host's answer to an affiliation request, when
-- several nodes share the store (issue 17): the node storing the answer may not be the
-- one where the request waits. The answer is written in only while the wait is open; the
-- waiting node takes it out, or deletes the row when it gives up. A row left past
-- until_at by a node that stopped is ignored, and swept when a node starts.
CREATE TABLE answer_waits (
    wait_key    TEXT PRIMARY KEY,
    answer      TEXT,
    until_at    BIGINT NOT NULL
);
