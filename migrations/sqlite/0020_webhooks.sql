-- Webhooks (SQLite): endpoints, the transactional outbox, and the deliveries queue.
-- Timestamps are integer microseconds since the epoch, as everywhere in this schema.

-- An endpoint and its signing secrets. `previous_secret` keeps signing until
-- `previous_secret_until` after a rotation. `failing_since` is the start of an unbroken run of
-- failed attempts (NULL while the last attempt succeeded); it drives automatic disabling.
CREATE TABLE webhook_endpoints (
    id                    INTEGER PRIMARY KEY AUTOINCREMENT,
    url                   TEXT    NOT NULL,
    events                TEXT    NOT NULL,
    description           TEXT,
    disabled              INTEGER NOT NULL DEFAULT 0 CONSTRAINT webhook_endpoints_disabled_check CHECK (disabled IN (0, 1)),
    secret                TEXT    NOT NULL,
    previous_secret       TEXT,
    previous_secret_until INTEGER,
    failing_since         INTEGER,
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL
);

-- One row per committed change, written in the change's own transaction. `payload` is the body
-- every delivery of the event sends, byte for byte. `dispatched_at` is set once the event has
-- been fanned out into deliveries.
CREATE TABLE webhook_outbox (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id      TEXT    NOT NULL CONSTRAINT webhook_outbox_event_key UNIQUE,
    event_type    TEXT    NOT NULL,
    payload       TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    dispatched_at INTEGER
);

CREATE INDEX webhook_outbox_undispatched_idx ON webhook_outbox (id) WHERE dispatched_at IS NULL;

-- One event to one endpoint: itself a queue. A worker claims due rows inside the single write
-- transaction, sets `lease_until`, sends, and records the outcome; a worker that dies leaves
-- the row to be claimed again once the lease has passed.
CREATE TABLE webhook_deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    endpoint_id     INTEGER NOT NULL CONSTRAINT webhook_deliveries_endpoint_fk REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    outbox_id       INTEGER NOT NULL CONSTRAINT webhook_deliveries_outbox_fk REFERENCES webhook_outbox (id) ON DELETE CASCADE,
    status          TEXT    NOT NULL CONSTRAINT webhook_deliveries_status_check CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_until     INTEGER,
    last_status     INTEGER,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    CONSTRAINT webhook_deliveries_event_key UNIQUE (endpoint_id, outbox_id)
);

CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_endpoint_idx ON webhook_deliveries (endpoint_id, id DESC);
CREATE INDEX webhook_deliveries_outbox_idx ON webhook_deliveries (outbox_id);
