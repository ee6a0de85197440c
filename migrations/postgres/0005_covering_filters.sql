-- The price and stock indexes carry each other's column, so a count or page filtered on both
-- (min_price with in_stock) can be an index-only scan. Keyset pages use the same (key, id) keys.
DROP INDEX products_price_idx;
DROP INDEX products_stock_idx;
CREATE INDEX products_price_idx ON products (price_cents, id) INCLUDE (stock);
CREATE INDEX products_stock_idx ON products (stock, id) INCLUDE (price_cents);
