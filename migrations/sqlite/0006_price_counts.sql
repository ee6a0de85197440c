-- Counts per price, kept by triggers like product_counts, so the total of a listing filtered by
-- price (with or without in_stock) is a sum over the distinct prices in the range instead of a
-- count of every matching product (at 1M products: 5 to 30 ms of count(*) over an index).
-- A price no product has any more is removed, so the table is as small as the price list.
CREATE TABLE product_price_counts (
    price_cents INTEGER PRIMARY KEY,
    total       INTEGER NOT NULL,
    in_stock    INTEGER NOT NULL
);
INSERT INTO product_price_counts (price_cents, total, in_stock)
SELECT price_cents, count(*), sum(stock > 0) FROM products GROUP BY price_cents;

CREATE TRIGGER product_price_counts_insert AFTER INSERT ON products BEGIN
    INSERT INTO product_price_counts (price_cents, total, in_stock)
    VALUES (new.price_cents, 1, new.stock > 0)
    ON CONFLICT (price_cents) DO UPDATE SET total = total + 1, in_stock = in_stock + excluded.in_stock;
END;

CREATE TRIGGER product_price_counts_delete AFTER DELETE ON products BEGIN
    UPDATE product_price_counts SET total = total - 1, in_stock = in_stock - (old.stock > 0)
    WHERE price_cents = old.price_cents;
    DELETE FROM product_price_counts WHERE price_cents = old.price_cents AND total = 0;
END;

CREATE TRIGGER product_price_counts_update AFTER UPDATE OF price_cents, stock ON products
WHEN old.price_cents <> new.price_cents OR (old.stock > 0) <> (new.stock > 0)
BEGIN
    UPDATE product_price_counts SET total = total - 1, in_stock = in_stock - (old.stock > 0)
    WHERE price_cents = old.price_cents;
    DELETE FROM product_price_counts WHERE price_cents = old.price_cents AND total = 0;
    INSERT INTO product_price_counts (price_cents, total, in_stock)
    VALUES (new.price_cents, 1, new.stock > 0)
    ON CONFLICT (price_cents) DO UPDATE SET total = total + 1, in_stock = in_stock + excluded.in_stock;
END;
