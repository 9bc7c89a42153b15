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
-- p_updated_at as JSON); their SKUs are different ones (each request holds
-- its SKU's turn in the store) but need not be, nor need their carts. It
-- returns one row per request, in the order given, with the request's
-- position (ordinal, from 1) and what commerce_set_line (migration 0009)
-- answers for a reservation alone: 'ok', 'no_cart', 'cart', 'no_sku',
-- 'currency' or 'insufficient' (with the available count), and the cart as
-- it was locked.
--
-- Lock order, as on every path: carts, then reservation rows, then SKU
-- rows. Every cart of the batch is locked first, in id order (as a group
-- locks its carts), then the current holds of the requests that have them,
-- so neither is waited for while a SKU's row is held; then the requests
-- are decided in SKU order (COLLATE "C"), so two batches that share SKUs
-- take their rows in the same order.
--
-- Most requests of a batch add a new line to a cart that no other request
-- of the batch touches, for a SKU no other request asks for: those are
-- decided by the SKU's conditional counter update alone (as
-- commerce_hold does, with no current hold to replace), and their holds,
-- lines and carts' clocks written together at the end, a statement for
-- all of them. Every other request (a line the cart has, a cart or a SKU
-- twice in the batch, a cart that refuses, or a counter update that
-- refuses, for the reclaim and the exact refusal) runs commerce_set_line
-- (migration 0009) in its turn, as a reservation alone. A refusal writes
-- nothing and does not stop the batch; an error rolls the whole batch
-- back, and the store then runs each request alone. A hold without its
-- line (none is written so) would make the insert of the new one fail,
-- and with it the batch.
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
-- Every statement probes by key (a lateral subquery with FOR UPDATE or an
-- aggregate, or one statement a row), as in commerce_set_lines: a join
-- could get a generic plan that reads every cart of the tenant on a table
-- whose statistics are stale.
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_n integer := cardinality(p_carts);
    v_locked uuid[];
    v_locked_rows tid[];
    v_locked_docs jsonb[];
    v_locked_open boolean[];
    v_rows tid[] := array_fill(NULL::tid, ARRAY[v_n]);
    v_docs jsonb[] := array_fill(NULL::jsonb, ARRAY[v_n]);
    v_open boolean[] := array_fill(NULL::boolean, ARRAY[v_n]);
    v_items jsonb[];
    v_counts integer[];
    v_has_line boolean[];
    v_alone_in_batch boolean[] := array_fill(NULL::boolean, ARRAY[v_n]);
    v_outcomes text[] := array_fill(NULL::text, ARRAY[v_n]);
    v_available bigint[] := array_fill(NULL::bigint, ARRAY[v_n]);
    v_priced_in text[] := array_fill(NULL::text, ARRAY[v_n]);
    v_granted boolean[] := array_fill(false, ARRAY[v_n]);
    v_position integer;
    v_i integer;
    v_outcome text;
    v_doc jsonb;
    v_cart_items jsonb;
    v_count bigint;
    v_priced text;
BEGIN
    PERFORM set_config('app.tenant_id', p_tenant, true);

    -- Every cart, locked in id order (a locking read answers with the row
    -- as locked), then each request's cart lines (a statement after the
    -- locks: a fresh snapshot).
    SELECT array_agg(c.id ORDER BY c.id), array_agg(k.ctid ORDER BY c.id),
           array_agg(k.doc ORDER BY c.id), array_agg(k.open ORDER BY c.id)
    INTO v_locked, v_locked_rows, v_locked_docs, v_locked_open
    FROM (SELECT DISTINCT c.id FROM unnest(p_carts) AS c(id) ORDER BY c.id) AS c
    CROSS JOIN LATERAL (SELECT x.ctid, x.doc, x.checked_out_order IS NULL AS open
        FROM carts x WHERE x.tenant_id = p_tenant AND x.id = c.id FOR UPDATE) AS k;

    SELECT array_agg(l.items ORDER BY r.i), array_agg(l.n ORDER BY r.i),
           array_agg(l.has_line ORDER BY r.i)
    INTO v_items, v_counts, v_has_line
    FROM unnest(p_carts, p_skus) WITH ORDINALITY AS r(id, sku, i)
    CROSS JOIN LATERAL (SELECT
            COALESCE(jsonb_agg(jsonb_build_array(y.sku, y.quantity) ORDER BY y.position),
                '[]'::jsonb) AS items,
            count(*)::integer AS n,
            COALESCE(bool_or(y.sku = r.sku), false) AS has_line
        FROM cart_lines y WHERE y.tenant_id = p_tenant AND y.cart_id = r.id) AS l;

    -- The current holds of the requests whose carts have the line, locked
    -- before any SKU's row (a cart holds a SKU only with a line of it):
    -- a sweep that has taken one of them then finishes without waiting
    -- for a SKU this batch holds.
    IF true = ANY(v_has_line) THEN
        PERFORM 1
        FROM unnest(p_carts, p_skus, v_has_line) AS r(id, sku, has_line)
        CROSS JOIN LATERAL (SELECT 1 FROM reservations x
            WHERE r.has_line AND x.tenant_id = p_tenant AND x.sku = r.sku
              AND x.cart_id = r.id
            FOR UPDATE) AS h;
    END IF;

    FOR v_i IN 1 .. v_n LOOP
        -- Whether the request's cart and SKU each appear once in the batch.
        v_alone_in_batch[v_i] := array_position(p_carts, p_carts[v_i]) = v_i
            AND array_position(p_carts, p_carts[v_i], v_i + 1) IS NULL
            AND array_position(p_skus, p_skus[v_i]) = v_i
            AND array_position(p_skus, p_skus[v_i], v_i + 1) IS NULL;
        v_position := array_position(v_locked, p_carts[v_i]);
        v_docs[v_i] := v_locked_docs[v_position];
        v_rows[v_i] := v_locked_rows[v_position];
        v_open[v_i] := v_locked_open[v_position];
    END LOOP;

    FOR v_i IN
        SELECT s.i FROM generate_subscripts(p_skus, 1) AS s(i)
        ORDER BY p_skus[s.i] COLLATE "C", s.i
    LOOP
        -- A new line on a cart and a SKU of its own in the batch: the
        -- counter's conditional update decides.
        IF v_docs[v_i] IS NOT NULL AND v_open[v_i] AND v_alone_in_batch[v_i]
           AND NOT v_has_line[v_i] AND p_quantities[v_i] > 0
           AND p_quantities[v_i] <= p_max_units[v_i]
           AND v_counts[v_i] < p_max_lines[v_i] THEN
            UPDATE skus s SET held = s.held + p_quantities[v_i]
            WHERE s.tenant_id = p_tenant AND s.sku = p_skus[v_i]
              AND s.product_id IS NOT NULL AND s.currency = v_docs[v_i]->>'currency'
              AND EXISTS (SELECT 1 FROM products p
                  WHERE p.tenant_id = p_tenant AND p.id = s.product_id AND p.published)
              AND s.on_hand - s.held >= p_quantities[v_i];
            GET DIAGNOSTICS v_count = ROW_COUNT;
            IF v_count = 1 THEN
                v_granted[v_i] := true;
                v_outcomes[v_i] := 'ok';
                CONTINUE;
            END IF;
        END IF;
        -- Anything else: as a reservation alone.
        SELECT r.outcome, r.cart_doc, r.cart_items, r.available, r.priced_in
        INTO v_outcome, v_doc, v_cart_items, v_count, v_priced
        FROM commerce_set_line(p_tenant, p_carts[v_i], p_skus[v_i], p_quantities[v_i],
            p_max_lines[v_i], p_max_units[v_i], p_expires_at[v_i], p_now[v_i],
            p_updated_at[v_i]) AS r;
        v_outcomes[v_i] := v_outcome;
        v_docs[v_i] := v_doc;
        v_items[v_i] := v_cart_items;
        v_available[v_i] := v_count;
        v_priced_in[v_i] := v_priced;
    END LOOP;

    -- The granted new lines: their holds, lines and carts' clocks. The
    -- carts are the batch's own, locked, and touched by no other request
    -- of it, so the row ids the locks gave still find them.
    IF true = ANY(v_granted) THEN
        INSERT INTO reservations (tenant_id, sku, cart_id, quantity, expires_at)
        SELECT p_tenant, p_skus[i], p_carts[i], p_quantities[i], p_expires_at[i]
        FROM generate_series(1, v_n) AS i WHERE v_granted[i];
        INSERT INTO cart_lines (tenant_id, cart_id, sku, quantity)
        SELECT p_tenant, p_carts[i], p_skus[i], p_quantities[i]
        FROM generate_series(1, v_n) AS i WHERE v_granted[i] ORDER BY i;
        PERFORM commerce_write_carts(p_tenant,
            array_agg(v_rows[i] ORDER BY i), array_agg(p_carts[i] ORDER BY i),
            array_agg(jsonb_set(v_docs[i], '{updated_at}', p_updated_at[i]) ORDER BY i))
        FROM generate_series(1, v_n) AS i
        WHERE v_granted[i];
    END IF;

    RETURN QUERY
    SELECT i, v_outcomes[i], v_docs[i],
           CASE WHEN v_docs[i] IS NULL THEN NULL ELSE v_items[i] END,
           v_available[i], v_priced_in[i]
    FROM generate_series(1, v_n) AS i
    ORDER BY i;
END
$$;

REVOKE ALL ON FUNCTION commerce_set_line_batch(text, text[], uuid[], integer[], integer[], integer[], timestamptz[], timestamptz[], jsonb[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION commerce_set_line_batch(text, text[], uuid[], integer[], integer[], integer[], timestamptz[], timestamptz[], jsonb[]) TO commerce_app;
