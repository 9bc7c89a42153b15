-- Orders are listed newest first with keyset pagination: the placement time
-- and the customer become columns, and (tenant, placed_at, id) is indexed.
ALTER TABLE orders ADD COLUMN placed_at timestamptz;
ALTER TABLE orders ADD COLUMN customer_id text;
UPDATE orders SET placed_at = (doc->>'placed_at')::timestamptz, customer_id = doc->>'customer';
ALTER TABLE orders ALTER COLUMN placed_at SET NOT NULL;
CREATE INDEX orders_by_placement ON orders (tenant_id, placed_at DESC, id DESC);
