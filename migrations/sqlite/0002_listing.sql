-- Listing at catalogue scale (SQLite): an index per sort key with the id tie-break, full-text
-- search kept in sync by triggers (same transaction as the write), and maintained counts.

CREATE INDEX products_name_idx       ON products (name, id);
CREATE INDEX products_price_idx      ON products (price_cents, id);
CREATE INDEX products_stock_idx      ON products (stock, id);
CREATE INDEX products_created_at_idx ON products (created_at, id);
CREATE INDEX products_updated_at_idx ON products (updated_at, id);

-- External-content FTS5 over name, description and sku. remove_diacritics 0 keeps matching the
-- same as PostgreSQL's 'simple' configuration: case-insensitive, accents significant.
CREATE VIRTUAL TABLE products_fts USING fts5(
    name, description, sku,
    content = 'products', content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 0'
);

CREATE TRIGGER products_fts_insert AFTER INSERT ON products BEGIN
    INSERT INTO products_fts (rowid, name, description, sku)
    VALUES (new.id, new.name, new.description, new.sku);
END;

CREATE TRIGGER products_fts_delete AFTER DELETE ON products BEGIN
    INSERT INTO products_fts (products_fts, rowid, name, description, sku)
    VALUES ('delete', old.id, old.name, old.description, old.sku);
END;

CREATE TRIGGER products_fts_update AFTER UPDATE OF name, description, sku ON products
WHEN old.name IS NOT new.name OR old.description IS NOT new.description OR old.sku IS NOT new.sku
BEGIN
    INSERT INTO products_fts (products_fts, rowid, name, description, sku)
    VALUES ('delete', old.id, old.name, old.description, old.sku);
    INSERT INTO products_fts (rowid, name, description, sku)
    VALUES (new.id, new.name, new.description, new.sku);
END;

-- Counts kept by triggers, so `total` of an unfiltered (or in_stock-only) listing costs one row
-- read instead of a scan of the catalogue.
CREATE TABLE product_counts (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    total    INTEGER NOT NULL,
    in_stock INTEGER NOT NULL
);
INSERT INTO product_counts (id, total, in_stock)
SELECT 1, count(*), count(*) FILTER (WHERE stock > 0) FROM products;

CREATE TRIGGER product_counts_insert AFTER INSERT ON products BEGIN
    UPDATE product_counts SET total = total + 1, in_stock = in_stock + (new.stock > 0) WHERE id = 1;
END;

CREATE TRIGGER product_counts_delete AFTER DELETE ON products BEGIN
    UPDATE product_counts SET total = total - 1, in_stock = in_stock - (old.stock > 0) WHERE id = 1;
END;

CREATE TRIGGER product_counts_stock AFTER UPDATE OF stock ON products
WHEN (old.stock > 0) <> (new.stock > 0)
BEGIN
    UPDATE product_counts SET in_stock = in_stock + (new.stock > 0) - (old.stock > 0) WHERE id = 1;
END;
