-- The counts move once per statement instead of once per row. A row-level trigger updated the
-- single product_counts row for every inserted product; inside one transaction each update left
-- a row version that could not be pruned yet and the next update walked them all, so a
-- 40,000-row insert took 19 s instead of 0.9 s. Statement-level triggers read the transition
-- tables and apply the whole statement's change in one update, and skip it when nothing moved
-- (an edit or an adjustment that leaves a product in stock takes no lock on the counts row).
DROP TRIGGER product_counts_maintain ON products;
DROP FUNCTION product_counts_maintain();

CREATE FUNCTION product_counts_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE product_counts
    SET total = total + delta.rows, in_stock = in_stock + delta.stocked
    FROM (SELECT count(*) AS rows, count(*) FILTER (WHERE stock > 0) AS stocked FROM inserted) AS delta
    WHERE id = 1 AND delta.rows > 0;
    RETURN NULL;
END;
$$;

CREATE FUNCTION product_counts_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE product_counts
    SET total = total - delta.rows, in_stock = in_stock - delta.stocked
    FROM (SELECT count(*) AS rows, count(*) FILTER (WHERE stock > 0) AS stocked FROM deleted) AS delta
    WHERE id = 1 AND delta.rows > 0;
    RETURN NULL;
END;
$$;

CREATE FUNCTION product_counts_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE product_counts
    SET in_stock = in_stock + delta.stocked
    FROM (SELECT (SELECT count(*) FROM after_update WHERE stock > 0)
               - (SELECT count(*) FROM before_update WHERE stock > 0) AS stocked) AS delta
    WHERE id = 1 AND delta.stocked <> 0;
    RETURN NULL;
END;
$$;

CREATE TRIGGER product_counts_inserted AFTER INSERT ON products
REFERENCING NEW TABLE AS inserted
FOR EACH STATEMENT EXECUTE FUNCTION product_counts_inserted();

CREATE TRIGGER product_counts_deleted AFTER DELETE ON products
REFERENCING OLD TABLE AS deleted
FOR EACH STATEMENT EXECUTE FUNCTION product_counts_deleted();

-- Transition tables cannot be combined with a column list (UPDATE OF stock), so this fires on
-- every UPDATE statement of products; it writes only when a product crossed zero stock.
CREATE TRIGGER product_counts_updated AFTER UPDATE ON products
REFERENCING OLD TABLE AS before_update NEW TABLE AS after_update
FOR EACH STATEMENT EXECUTE FUNCTION product_counts_updated();
