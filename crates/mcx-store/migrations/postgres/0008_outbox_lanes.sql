-- Requests to a partner are delivered in order per lane: one lane per user for
-- (de-)affiliation flows (their order matters per user), one shared lane ('') for the
-- rest. Lanes of one partner are delivered concurrently.
ALTER TABLE outbox ADD COLUMN lane TEXT NOT NULL DEFAULT '';
CREATE INDEX outbox_by_lane ON outbox (partner, lane, outbox_id);
