-- Idempotency keys (SQLite). A key is scoped to the user who sent it; its record holds the
-- request's fingerprint and, once done, the response to replay.

CREATE TABLE idempotency_keys (
    user_id     INTEGER NOT NULL CONSTRAINT idempotency_keys_user_fk REFERENCES users (id) ON DELETE CASCADE,
    key         TEXT    NOT NULL,
    fingerprint TEXT    NOT NULL,
    state       TEXT    NOT NULL CONSTRAINT idempotency_keys_state_check CHECK (state IN ('in_flight', 'done')),
    status      INTEGER,
    headers     TEXT,
    body        BLOB,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    CONSTRAINT idempotency_keys_pkey PRIMARY KEY (user_id, key)
);

CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);

-- The ledger is read newest first per product.
DROP INDEX stock_ledger_product_idx;
CREATE INDEX stock_ledger_product_idx ON stock_ledger (product_id, id DESC);
