-- Products and their stock ledger (PostgreSQL).
-- Money is integer cents. name sorts with the "C" collation so that ordering is byte order, the
-- same as SQLite's, and keyset cursors compare exactly what ORDER BY sorts.

CREATE TABLE products (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sku         TEXT,
    name        TEXT COLLATE "C" NOT NULL,
    description TEXT,
    price_cents BIGINT NOT NULL CONSTRAINT products_price_range CHECK (price_cents BETWEEN 0 AND 100000000000),
    stock       BIGINT NOT NULL CONSTRAINT products_stock_range CHECK (stock BETWEEN 0 AND 2147483647),
    version     BIGINT NOT NULL DEFAULT 1,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);

-- sku is unique ignoring case; it is ASCII-only, so lower() is exact on both engines.
CREATE UNIQUE INDEX products_sku_key ON products (lower(sku));

-- Every change of a product's stock, the initial value included.
CREATE TABLE stock_ledger (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    product_id  BIGINT NOT NULL CONSTRAINT stock_ledger_product_fk REFERENCES products (id) ON DELETE CASCADE,
    delta       BIGINT NOT NULL,
    stock_after BIGINT NOT NULL,
    reason      TEXT   NOT NULL,
    actor_id    BIGINT,
    created_at  TIMESTAMPTZ NOT NULL
);

CREATE INDEX stock_ledger_product_idx ON stock_ledger (product_id, id);
