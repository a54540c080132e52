-- Clients whose session ended and whose affiliations may not have ended yet: a row is
-- written in the transaction that deletes the session and removed once the client's
-- affiliations have ended. A start finishes what these rows name instead of checking
-- every stored affiliation against the sessions (issue 16: 10 M affiliations, start-up
-- under 5 s).
CREATE TABLE ending_clients (
    mc_service_id TEXT NOT NULL,
    client_id     TEXT NOT NULL,
    PRIMARY KEY (mc_service_id, client_id)
);
-- A store from before this table: the full check, once.
INSERT INTO ending_clients (mc_service_id, client_id)
SELECT DISTINCT a.mc_service_id, a.client_id FROM affiliations a
WHERE NOT EXISTS (
    SELECT 1 FROM sessions s WHERE s.mc_service_id = a.mc_service_id AND s.client_id = a.client_id
);
