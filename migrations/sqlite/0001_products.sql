-- Products and their stock ledger (SQLite).
-- Money is integer cents; timestamps are integer microseconds since the Unix epoch (UTC), which
-- sort and compare exactly; the application renders them as RFC 3339.

CREATE TABLE products (
    -- AUTOINCREMENT: an id is never reused after a delete, so a stale Location or ETag can
    -- never point at a different product.
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    sku         TEXT,
    name        TEXT    NOT NULL,
    description TEXT,
    price_cents INTEGER NOT NULL CONSTRAINT products_price_range CHECK (price_cents BETWEEN 0 AND 100000000000),
    stock       INTEGER NOT NULL CONSTRAINT products_stock_range CHECK (stock BETWEEN 0 AND 2147483647),
    version     INTEGER NOT NULL DEFAULT 1,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

-- sku is unique ignoring case; it is ASCII-only, so lower() is exact on both engines.
CREATE UNIQUE INDEX products_sku_key ON products (lower(sku));

-- Every change of a product's stock, the initial value included.
CREATE TABLE stock_ledger (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    product_id  INTEGER NOT NULL CONSTRAINT stock_ledger_product_fk REFERENCES products (id) ON DELETE CASCADE,
    delta       INTEGER NOT NULL,
    stock_after INTEGER NOT NULL,
    reason      TEXT    NOT NULL,
    actor_id    INTEGER,
    created_at  INTEGER NOT NULL
);

CREATE INDEX stock_ledger_product_idx ON stock_ledger (product_id, id);
