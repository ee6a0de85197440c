-- Webhooks (PostgreSQL): endpoints, the transactional outbox, and the deliveries queue.

-- An endpoint and its signing secrets. `previous_secret` keeps signing until
-- `previous_secret_until` after a rotation. `failing_since` is the start of an unbroken run of
-- failed attempts (NULL while the last attempt succeeded); it drives automatic disabling.
CREATE TABLE webhook_endpoints (
    id                    BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    url                   TEXT    NOT NULL,
    events                TEXT    NOT NULL,
    description           TEXT,
    disabled              BOOLEAN NOT NULL DEFAULT FALSE,
    secret                TEXT    NOT NULL,
    previous_secret       TEXT,
    previous_secret_until TIMESTAMPTZ,
    failing_since         TIMESTAMPTZ,
    created_at            TIMESTAMPTZ NOT NULL,
    updated_at            TIMESTAMPTZ NOT NULL
);

-- One row per committed change, written in the change's own transaction. `payload` is the body
-- every delivery of the event sends, byte for byte. `dispatched_at` is set once the event has
-- been fanned out into deliveries.
CREATE TABLE webhook_outbox (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id      TEXT NOT NULL CONSTRAINT webhook_outbox_event_key UNIQUE,
    event_type    TEXT NOT NULL,
    payload       TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    dispatched_at TIMESTAMPTZ
);

CREATE INDEX webhook_outbox_undispatched_idx ON webhook_outbox (id) WHERE dispatched_at IS NULL;

-- One event to one endpoint: itself a queue. A worker claims due rows (FOR UPDATE SKIP LOCKED),
-- sets `lease_until`, sends, and records the outcome; a worker that dies leaves the row to be
-- claimed again once the lease has passed.
CREATE TABLE webhook_deliveries (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    endpoint_id     BIGINT  NOT NULL CONSTRAINT webhook_deliveries_endpoint_fk REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    outbox_id       BIGINT  NOT NULL CONSTRAINT webhook_deliveries_outbox_fk REFERENCES webhook_outbox (id) ON DELETE CASCADE,
    status          TEXT    NOT NULL CONSTRAINT webhook_deliveries_status_check CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    lease_until     TIMESTAMPTZ,
    last_status     INTEGER,
    last_error      TEXT,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    CONSTRAINT webhook_deliveries_event_key UNIQUE (endpoint_id, outbox_id)
);

CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_endpoint_idx ON webhook_deliveries (endpoint_id, id DESC);
CREATE INDEX webhook_deliveries_outbox_idx ON webhook_deliveries (outbox_id);
