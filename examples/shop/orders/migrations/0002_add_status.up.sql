ALTER TABLE orders ADD COLUMN status TEXT NOT NULL DEFAULT 'placed';
CREATE INDEX orders_customer ON orders (customer_id);
