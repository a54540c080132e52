-- The SIP door's own state (issue 15 item 8): affiliation publications by entity tag and
-- subscription dialogs by dialog ID, so a restart does not silently end them. `value` is
-- the door's JSON; `expires_at` (milliseconds) lets ended ones be dropped.
CREATE TABLE sip_state (
    kind TEXT NOT NULL,
    state_key TEXT NOT NULL,
    value TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (kind, state_key)
);
