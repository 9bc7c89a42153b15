-- Fewer index entries and fewer cart row versions per reservation.
--
-- A reservation inserts a hold and a cart line and writes its cart's
-- clock; a checkout inserts an allocation per line. Every index entry of
-- those rows is written (and logged) with it, and a cart's new version
-- that cannot stay on its page is a new entry in the carts' primary key
-- too.
--
-- 1. Holds and allocations are keyed by their owner first: the primary
--    key (tenant_id, cart_id, sku) finds a cart's holds, which the index
--    reservations_cart (tenant_id, cart_id) did beside the key (tenant_id,
--    sku, cart_id); likewise (tenant_id, order_id, sku) for allocations
--    and allocations_order. One index less to write per hold and per
--    allocation; the uniqueness is the same (ON CONFLICT names the same
--    columns), and the SKU's own reads (the live sums, the reclaim, the
--    next release) keep reservations_live and allocations_live. Cart and
--    order ids are time-ordered (UUID version 7, commerce-core's ids), so
--    a new cart's or order's entries land at the end of these keys, on
--    the few pages already in memory and already logged since the last
--    checkpoint, not on a random one each.
-- 2. A cart's row is rewritten by every change of it (its document's
--    clock): half of each new page of carts is left free, so the new
--    version stays on the page (a heap-only update: no new index entry,
--    and a log record of the changed bytes only).
ALTER TABLE reservations
    DROP CONSTRAINT reservations_pkey,
    ADD CONSTRAINT reservations_pkey PRIMARY KEY (tenant_id, cart_id, sku);
DROP INDEX reservations_cart;

ALTER TABLE allocations
    DROP CONSTRAINT allocations_pkey,
    ADD CONSTRAINT allocations_pkey PRIMARY KEY (tenant_id, order_id, sku);
DROP INDEX allocations_order;

ALTER TABLE carts SET (fillfactor = 50);
