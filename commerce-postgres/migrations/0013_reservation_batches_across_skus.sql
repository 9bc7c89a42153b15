-- Reservations of different SKUs in one transaction.
--
-- The grouped strategy (commerce-postgres/src/group.rs) groups the
-- reservations of one SKU behind the one in flight (commerce_set_lines,
-- migration 0012). A reservation that finds its SKU idle used to run alone,
-- one call and one commit each, so load spread over many SKUs paid a commit
-- per reservation. Those lone reservations now queue behind the tenant's
-- lone call in flight, and the ones that waited run together in one call of
-- this function: one round trip and one commit for the batch.
--
-- The requests come as parallel arrays, each with its own clock (p_now, and
-- p_updated_at as JSON); the SKUs are all different (each request holds its
-- SKU's turn in the store), the carts need not be. It returns one row per
-- request, with the request's position in the arrays (ordinal, from 1) and
-- the outcome of commerce_set_line (migration 0009), which decides and
-- writes each of them as it does for a reservation alone.
--
-- Lock order, as on every path: carts, then reservation rows, then SKU
-- rows. Every cart of the batch is locked first, in id order (as a group
-- locks its carts), so no cart is waited for while a SKU's row is held;
-- then the requests run in SKU order (COLLATE "C"), so two batches that
-- share SKUs take their rows in the same order. A refusal writes nothing
-- and does not stop the batch; an error rolls the whole batch back, and the
-- store then runs each request alone.
CREATE FUNCTION commerce_set_line_batch(
    p_tenant text,
    p_skus text[],
    p_carts uuid[],
    p_quantities integer[],
    p_max_lines integer[],
    p_max_units integer[],
    p_expires_at timestamptz[],
    p_now timestamptz[],
    p_updated_at jsonb[])
RETURNS TABLE (
    ordinal integer,
    outcome text,
    cart_doc jsonb,
    cart_items jsonb,
    available bigint,
    priced_in text)
LANGUAGE plpgsql VOLATILE
-- The cart locks probe by key (a lateral subquery with FOR UPDATE), as in
-- commerce_set_lines: a join could get a generic plan that reads every
-- cart of the tenant on a table whose statistics are stale.
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_i integer;
BEGIN
    PERFORM set_config('app.tenant_id', p_tenant, true);

    PERFORM 1
    FROM (SELECT DISTINCT c.id FROM unnest(p_carts) AS c(id) ORDER BY c.id) AS c
    CROSS JOIN LATERAL (SELECT 1 FROM carts x
        WHERE x.tenant_id = p_tenant AND x.id = c.id FOR UPDATE) AS k;

    FOR v_i IN
        SELECT s.i FROM generate_subscripts(p_skus, 1) AS s(i)
        ORDER BY p_skus[s.i] COLLATE "C", s.i
    LOOP
        RETURN QUERY
        SELECT v_i, r.outcome, r.cart_doc, r.cart_items, r.available, r.priced_in
        FROM commerce_set_line(p_tenant, p_carts[v_i], p_skus[v_i], p_quantities[v_i],
            p_max_lines[v_i], p_max_units[v_i], p_expires_at[v_i], p_now[v_i],
            p_updated_at[v_i]) AS r;
    END LOOP;
END
$$;

REVOKE ALL ON FUNCTION commerce_set_line_batch(text, text[], uuid[], integer[], integer[], integer[], timestamptz[], timestamptz[], jsonb[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION commerce_set_line_batch(text, text[], uuid[], integer[], integer[], integer[], timestamptz[], timestamptz[], jsonb[]) TO commerce_app;
