-- Counts per price, kept by the statement-level triggers of 0006 like product_counts, so the total
-- of a listing filtered by price (with or without in_stock) is a sum over the distinct prices in
-- the range instead of a count of every matching product (at 1M products: 35 to 46 ms of
-- count(*) over an index). A price no product has any more is removed, so the table is as small
-- as the price list.
CREATE TABLE product_price_counts (
    price_cents BIGINT PRIMARY KEY,
    total       BIGINT NOT NULL,
    in_stock    BIGINT NOT NULL
);
INSERT INTO product_price_counts (price_cents, total, in_stock)
SELECT price_cents, count(*), count(*) FILTER (WHERE stock > 0) FROM products GROUP BY price_cents;

-- Adds per-price deltas; drops the prices left with no product.
CREATE FUNCTION product_price_counts_apply(delta_price BIGINT[], delta_total BIGINT[], delta_in_stock BIGINT[])
RETURNS void LANGUAGE sql AS $$
    INSERT INTO product_price_counts AS c (price_cents, total, in_stock)
    SELECT d.price_cents, d.total, d.in_stock
    FROM unnest(delta_price, delta_total, delta_in_stock) AS d(price_cents, total, in_stock)
    WHERE d.total <> 0 OR d.in_stock <> 0
    ON CONFLICT (price_cents)
    DO UPDATE SET total = c.total + excluded.total, in_stock = c.in_stock + excluded.in_stock;
    DELETE FROM product_price_counts WHERE total = 0 AND price_cents = ANY (delta_price);
$$;

CREATE OR REPLACE FUNCTION product_counts_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE product_counts
    SET total = total + delta.rows, in_stock = in_stock + delta.stocked
    FROM (SELECT count(*) AS rows, count(*) FILTER (WHERE stock > 0) AS stocked FROM inserted) AS delta
    WHERE id = 1 AND delta.rows > 0;
    PERFORM product_price_counts_apply(array_agg(price_cents), array_agg(rows), array_agg(stocked))
    FROM (SELECT price_cents, count(*) AS rows, count(*) FILTER (WHERE stock > 0) AS stocked
          FROM inserted GROUP BY price_cents) AS delta;
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION product_counts_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE product_counts
    SET total = total - delta.rows, in_stock = in_stock - delta.stocked
    FROM (SELECT count(*) AS rows, count(*) FILTER (WHERE stock > 0) AS stocked FROM deleted) AS delta
    WHERE id = 1 AND delta.rows > 0;
    PERFORM product_price_counts_apply(array_agg(price_cents), array_agg(-rows), array_agg(-stocked))
    FROM (SELECT price_cents, count(*) AS rows, count(*) FILTER (WHERE stock > 0) AS stocked
          FROM deleted GROUP BY price_cents) AS delta;
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION product_counts_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE product_counts
    SET in_stock = in_stock + delta.stocked
    FROM (SELECT (SELECT count(*) FROM after_update WHERE stock > 0)
               - (SELECT count(*) FROM before_update WHERE stock > 0) AS stocked) AS delta
    WHERE id = 1 AND delta.stocked <> 0;
    -- Only the products whose price changed or that crossed zero stock move a price's counts.
    PERFORM product_price_counts_apply(array_agg(price_cents), array_agg(rows), array_agg(stocked))
    FROM (SELECT price_cents, sum(rows)::bigint AS rows, sum(stocked)::bigint AS stocked
          FROM (SELECT o.price_cents, -1 AS rows, -(o.stock > 0)::int AS stocked
                FROM before_update o JOIN after_update n ON n.id = o.id
                WHERE o.price_cents <> n.price_cents OR (o.stock > 0) <> (n.stock > 0)
                UNION ALL
                SELECT n.price_cents, 1, (n.stock > 0)::int
                FROM before_update o JOIN after_update n ON n.id = o.id
                WHERE o.price_cents <> n.price_cents OR (o.stock > 0) <> (n.stock > 0)) AS moves
          GROUP BY price_cents) AS delta
    HAVING count(*) > 0;
    RETURN NULL;
END;
$$;
