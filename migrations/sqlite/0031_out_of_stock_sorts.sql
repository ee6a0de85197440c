-- Out-of-stock pages (`in_stock=false`, `stock = 0`) in every sort order. The planner served
-- `stock = 0 ORDER BY updated_at DESC` from the stock index (all out-of-stock rows, then a sort):
-- 137 to 173 ms at 1M products with 2% out of stock, the slowest page of the staff console,
-- where "what ran out lately" is a daily question. Partial indexes hold only the out-of-stock
-- rows (small, and written only when a product's stock is or becomes 0) and give each sort key
-- its order; the id order is served by the stock index already.
CREATE INDEX products_out_of_stock_name_idx       ON products (name, id)        WHERE stock = 0;
CREATE INDEX products_out_of_stock_price_idx      ON products (price_cents, id) WHERE stock = 0;
CREATE INDEX products_out_of_stock_created_at_idx ON products (created_at, id)  WHERE stock = 0;
CREATE INDEX products_out_of_stock_updated_at_idx ON products (updated_at, id)  WHERE stock = 0;
