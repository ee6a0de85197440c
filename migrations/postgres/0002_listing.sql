-- Listing at catalogue scale (PostgreSQL): an index per sort key with the id tie-break, a
-- generated tsvector with a GIN index for full-text search (updated with the row, in the same
-- transaction), and maintained counts.

CREATE INDEX products_name_idx       ON products (name, id);
CREATE INDEX products_price_idx      ON products (price_cents, id);
CREATE INDEX products_stock_idx      ON products (stock, id);
CREATE INDEX products_created_at_idx ON products (created_at, id);
CREATE INDEX products_updated_at_idx ON products (updated_at, id);

-- 'simple': lower-cased words, no stemming, no stop words, accents significant (as SQLite's
-- unicode61 with remove_diacritics 0). Weights rank a word in the name above one in the sku,
-- above one in the description, as the bm25 weights do on SQLite.
ALTER TABLE products ADD COLUMN search tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('simple', name), 'A')
    || setweight(to_tsvector('simple', coalesce(sku, '')), 'B')
    || setweight(to_tsvector('simple', coalesce(description, '')), 'D')
) STORED;
CREATE INDEX products_search_idx ON products USING gin (search);

-- Counts kept by a trigger, so `total` of an unfiltered (or in_stock-only) listing costs one row
-- read instead of a scan of the catalogue.
CREATE TABLE product_counts (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    total    BIGINT NOT NULL,
    in_stock BIGINT NOT NULL
);
INSERT INTO product_counts (id, total, in_stock)
SELECT 1, count(*), count(*) FILTER (WHERE stock > 0) FROM products;

CREATE FUNCTION product_counts_maintain() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE product_counts SET total = total + 1, in_stock = in_stock + (NEW.stock > 0)::int WHERE id = 1;
    ELSIF TG_OP = 'DELETE' THEN
        UPDATE product_counts SET total = total - 1, in_stock = in_stock - (OLD.stock > 0)::int WHERE id = 1;
    ELSIF (OLD.stock > 0) <> (NEW.stock > 0) THEN
        UPDATE product_counts SET in_stock = in_stock + (NEW.stock > 0)::int - (OLD.stock > 0)::int WHERE id = 1;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER product_counts_maintain
AFTER INSERT OR DELETE OR UPDATE OF stock ON products
FOR EACH ROW EXECUTE FUNCTION product_counts_maintain();
