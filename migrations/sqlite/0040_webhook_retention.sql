-- Webhook retention (SQLite): the housekeeping purge (jobs::purge_once) deletes finished
-- deliveries and their events once they are old. These indexes let each of its batches go
-- straight to the old rows instead of scanning the tables.

-- Finished deliveries by when they finished (`updated_at` of their last outcome), one index per
-- status, each kept its own time. Partial, so a pending delivery, updated on every attempt,
-- never touches them.
CREATE INDEX webhook_deliveries_delivered_idx ON webhook_deliveries (updated_at) WHERE status = 'delivered';
CREATE INDEX webhook_deliveries_dead_idx ON webhook_deliveries (updated_at) WHERE status = 'dead';

-- Dispatched events in the order the purge walks them (dispatched_at, then id: the rowid every
-- SQLite index ends with), so a run passes each event still held by a delivery once.
CREATE INDEX webhook_outbox_dispatched_idx ON webhook_outbox (dispatched_at) WHERE dispatched_at IS NOT NULL;
