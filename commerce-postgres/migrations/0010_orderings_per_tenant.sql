-- Orderings kept per tenant instead of sequences shared by every tenant,
-- so that nothing in the schema spans tenants at write time and it can be
-- distributed by tenant_id (tests/distribution.rs checks the schema).

-- 1. A SKU's adjustment log: the next number of that log, taken by the
-- insert (`record_adjustment`) while the transaction holds the SKU's row
-- lock (every adjustment updates the SKU row first), so two never take the
-- same number.
-- A writer that gives no number (code from before this migration, during
-- a rolling deploy) gets the clock's microseconds, after every number the
-- store takes.
ALTER TABLE stock_adjustments ALTER COLUMN seq DROP IDENTITY;
ALTER TABLE stock_adjustments ALTER COLUMN seq
    SET DEFAULT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint;

-- 2. The event feed orders a tenant's events by (xid, position). The
-- position only has to order the events of one transaction: it becomes
-- the next number among this tenant's events of the inserting transaction
-- (the insert in `append` reads it through the order_events_feed index).
-- Existing events keep their positions: every later transaction has a
-- larger xid, so the feed's order is unchanged.
-- A writer that gives no position (code from before this migration, a
-- manual insert) gets the clock's microseconds, after the small numbers the
-- store writes in the same transaction.
ALTER TABLE order_events ALTER COLUMN position DROP IDENTITY;
ALTER TABLE order_events ALTER COLUMN position
    SET DEFAULT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint;

-- 3. A cart's lines are ordered by when they were added, in microseconds
-- of the server's clock, then by SKU. Lines added before keep their
-- (smaller) positions and stay first.
ALTER TABLE cart_lines ALTER COLUMN position DROP IDENTITY;
ALTER TABLE cart_lines ALTER COLUMN position
    SET DEFAULT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint;
