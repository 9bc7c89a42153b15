-- A group reservation in one round trip.
--
-- The grouped strategy (commerce-postgres/src/group.rs) answers the
-- reservations of one SKU that queue while another of the SKU is in flight
-- with one transaction. This function is that transaction's whole work, so
-- the store sends it as one statement outside any explicit transaction (the
-- call is its transaction: one round trip and one commit for the group,
-- where a group made seven round trips before).
--
-- The requests come as parallel arrays in arrival order, one per cart (the
-- store splits requests for the same cart into later groups); p_now is the
-- latest clock of the group (for the reclaim of lapsed holds) and
-- p_updated_at each request's own clock, as JSON. It returns one row per
-- request, in arrival order, with the outcomes of commerce_set_line
-- (migration 0009): 'ok', 'no_cart', 'cart', 'no_sku', 'currency' or
-- 'insufficient' (with the available count), and the cart as it was locked;
-- the store builds every answer from it with commerce-core's own code, as it
-- does for commerce_set_line.
--
-- The steps, in the lock order of every path (carts, then reservation rows,
-- then the SKU's row):
--  1. the carts locked FOR UPDATE in id order (two groups that share carts
--     cannot deadlock), then their lines read (a fresh snapshot: the lines
--     as they are after the locks);
--  2. each request checked on its cart (open, limits);
--  3. the current holds of the SKU by those carts, locked, then the SKU's
--     row;
--  4. grants decided in arrival order while stock lasts; if one is refused,
--     the SKU's lapsed holds and allocations are reclaimed and the decision
--     made again, so a refusal carries the real available count;
--  5. one statement writes every granted hold and cart line, the carts'
--     clocks, and moves the SKU's counter by the net change.
-- A group is all or nothing: should the call fail, nothing of it is written,
-- and the store runs each request alone.
CREATE FUNCTION commerce_set_lines(
    p_tenant text,
    p_sku text,
    p_carts uuid[],
    p_quantities integer[],
    p_max_lines integer[],
    p_max_units integer[],
    p_expires_at timestamptz[],
    p_now timestamptz,
    p_updated_at jsonb[])
RETURNS TABLE (
    outcome text,
    cart_doc jsonb,
    cart_items jsonb,
    available bigint,
    priced_in text)
LANGUAGE plpgsql VOLATILE
-- Every statement below reads or writes one row per request, by key: a
-- lateral subquery the planner cannot merge into a join (OFFSET 0, an
-- aggregate, FOR UPDATE), or one statement per row on its primary key.
-- Given a join instead, a generic plan guesses a tenant's share of a
-- table's rows, and on a table it believes small (fresh, or not analyzed
-- since it grew) reads every cart of the tenant and filters, rather than
-- probe the group's few keys: measured at 5 to 60 ms a statement at 20,000
-- carts, against well under 0.1 ms by key. The plans are generic, made once
-- per connection and not again for every group.
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_n integer := cardinality(p_carts);
    v_locked uuid[];
    v_locked_docs jsonb[];
    v_locked_open boolean[];
    v_docs jsonb[] := array_fill(NULL::jsonb, ARRAY[v_n]);
    v_open boolean[] := array_fill(NULL::boolean, ARRAY[v_n]);
    v_items jsonb[];
    v_counts integer[];
    v_has_line boolean[];
    v_hold_carts uuid[];
    v_hold_quantities integer[];
    v_outcomes text[] := array_fill(NULL::text, ARRAY[v_n]);
    v_available bigint[] := array_fill(NULL::bigint, ARRAY[v_n]);
    v_on_hand bigint;
    v_held bigint;
    v_currency text;
    v_sku_found boolean;
    v_reclaimed boolean := false;
    v_refused boolean;
    v_delta bigint;
    v_before bigint;
    v_free bigint;
    v_i integer;
    v_position integer;
    v_granted_carts uuid[];
    v_granted_quantities integer[];
    v_granted_expiries timestamptz[];
    v_granted_clocks jsonb[];
    v_granted_new_holds boolean[];
    v_granted_new_lines boolean[];
BEGIN
    PERFORM set_config('app.tenant_id', p_tenant, true);

    -- 1. The carts, locked in id order (a locking read answers with the
    -- row as locked, the latest version), then their lines (a statement
    -- after the locks: a fresh snapshot).
    SELECT array_agg(c.id ORDER BY c.id), array_agg(k.doc ORDER BY c.id),
           array_agg(k.open ORDER BY c.id)
    INTO v_locked, v_locked_docs, v_locked_open
    FROM (SELECT DISTINCT c.id FROM unnest(p_carts) AS c(id) ORDER BY c.id) AS c
    CROSS JOIN LATERAL (SELECT x.doc, x.checked_out_order IS NULL AS open
        FROM carts x WHERE x.tenant_id = p_tenant AND x.id = c.id FOR UPDATE) AS k;

    SELECT array_agg(l.items ORDER BY r.ord),
           array_agg(l.n ORDER BY r.ord),
           array_agg(l.has_line ORDER BY r.ord)
    INTO v_items, v_counts, v_has_line
    FROM unnest(p_carts) WITH ORDINALITY AS r(id, ord)
    CROSS JOIN LATERAL (SELECT
            COALESCE(jsonb_agg(jsonb_build_array(x.sku, x.quantity) ORDER BY x.position),
                '[]'::jsonb) AS items,
            count(*)::integer AS n,
            COALESCE(bool_or(x.sku = p_sku), false) AS has_line
        FROM cart_lines x WHERE x.tenant_id = p_tenant AND x.cart_id = r.id OFFSET 0) AS l;

    FOR v_i IN 1 .. v_n LOOP
        v_position := array_position(v_locked, p_carts[v_i]);
        v_docs[v_i] := v_locked_docs[v_position];
        v_open[v_i] := v_locked_open[v_position];
    END LOOP;

    -- 2. Each request on its own cart.
    FOR v_i IN 1 .. v_n LOOP
        IF v_docs[v_i] IS NULL THEN
            v_outcomes[v_i] := 'no_cart';
        ELSIF NOT v_open[v_i]
           OR p_quantities[v_i] > p_max_units[v_i]
           OR (NOT v_has_line[v_i] AND v_counts[v_i] >= p_max_lines[v_i]) THEN
            v_outcomes[v_i] := 'cart';
        END IF;
    END LOOP;

    LOOP
        -- 3. The carts' current holds of the SKU, then the SKU's row. (Read
        -- again after a reclaim, which may have taken a lapsed hold of the
        -- group's own carts: a transaction's own locks do not stop it.)
        SELECT array_agg(h.cart_id), array_agg(h.quantity)
        INTO v_hold_carts, v_hold_quantities
        FROM unnest(p_carts) AS c(id)
        CROSS JOIN LATERAL (SELECT x.cart_id, x.quantity FROM reservations x
            WHERE x.tenant_id = p_tenant AND x.sku = p_sku AND x.cart_id = c.id
            FOR UPDATE) AS h;

        SELECT s.on_hand, s.held, s.currency INTO v_on_hand, v_held, v_currency
        FROM skus s
        WHERE s.tenant_id = p_tenant AND s.sku = p_sku AND s.product_id IS NOT NULL
          AND EXISTS (SELECT 1 FROM products p
              WHERE p.tenant_id = p_tenant AND p.id = s.product_id AND p.published)
        FOR UPDATE OF s;
        v_sku_found := FOUND;

        -- 4. Grants in arrival order while stock lasts; a request's new
        -- quantity replaces its cart's current hold.
        v_refused := false;
        v_delta := 0;
        v_granted_carts := '{}';
        v_granted_quantities := '{}';
        v_granted_expiries := '{}';
        v_granted_clocks := '{}';
        v_granted_new_holds := '{}';
        v_granted_new_lines := '{}';
        FOR v_i IN 1 .. v_n LOOP
            CONTINUE WHEN v_outcomes[v_i] IN ('no_cart', 'cart');
            IF NOT v_sku_found THEN
                v_outcomes[v_i] := 'no_sku';
                CONTINUE;
            END IF;
            IF v_currency IS DISTINCT FROM v_docs[v_i]->>'currency' THEN
                v_outcomes[v_i] := 'currency';
                CONTINUE;
            END IF;
            v_position := array_position(v_hold_carts, p_carts[v_i]);
            v_before := COALESCE(v_hold_quantities[v_position], 0);
            v_free := v_on_hand - (v_held - v_before);
            IF p_quantities[v_i] <= v_free THEN
                v_held := v_held - v_before + p_quantities[v_i];
                v_delta := v_delta + p_quantities[v_i] - v_before;
                v_outcomes[v_i] := 'ok';
                v_granted_carts := v_granted_carts || p_carts[v_i];
                v_granted_quantities := v_granted_quantities || p_quantities[v_i];
                v_granted_expiries := v_granted_expiries || p_expires_at[v_i];
                v_granted_clocks := v_granted_clocks || p_updated_at[v_i];
                v_granted_new_holds := v_granted_new_holds || (v_position IS NULL);
                v_granted_new_lines := v_granted_new_lines || NOT v_has_line[v_i];
            ELSE
                v_refused := true;
                v_outcomes[v_i] := 'insufficient';
                v_available[v_i] := GREATEST(v_free, 0);
            END IF;
        END LOOP;

        EXIT WHEN NOT v_refused OR v_reclaimed;
        -- A refusal: reclaim the SKU's lapsed holds and allocations, and
        -- decide again.
        v_reclaimed := true;
        WITH r AS (
            DELETE FROM reservations WHERE (tenant_id, sku, cart_id) IN (
                SELECT x.tenant_id, x.sku, x.cart_id FROM reservations x
                WHERE x.tenant_id = p_tenant AND x.sku = p_sku AND x.expires_at <= p_now
                FOR UPDATE SKIP LOCKED)
            RETURNING quantity),
        a AS (
            DELETE FROM allocations WHERE (tenant_id, sku, order_id) IN (
                SELECT x.tenant_id, x.sku, x.order_id FROM allocations x
                WHERE x.tenant_id = p_tenant AND x.sku = p_sku AND x.expires_at <= p_now
                FOR UPDATE SKIP LOCKED)
            RETURNING quantity)
        UPDATE skus s SET held = s.held
            - (SELECT COALESCE(sum(r.quantity), 0) FROM r)
            - (SELECT COALESCE(sum(a.quantity), 0) FROM a)
        WHERE s.tenant_id = p_tenant AND s.sku = p_sku
          AND (EXISTS (SELECT 1 FROM r) OR EXISTS (SELECT 1 FROM a));
        FOR v_i IN 1 .. v_n LOOP
            IF v_outcomes[v_i] IN ('ok', 'insufficient') THEN
                v_outcomes[v_i] := NULL;
                v_available[v_i] := NULL;
            END IF;
        END LOOP;
    END LOOP;

    -- 5. The counter and the new holds and lines in one statement. A hold
    -- or a line the group's carts do not have yet is a plain insert: only a
    -- writer holding the cart's lock adds either, and the group holds every
    -- one of its carts' locks (and the holds it has, so no sweep takes one
    -- meanwhile).
    IF cardinality(v_granted_carts) > 0 THEN
        WITH req AS (
            SELECT * FROM unnest(v_granted_carts, v_granted_quantities,
                v_granted_expiries, v_granted_clocks, v_granted_new_holds, v_granted_new_lines)
                AS g(cart_id, quantity, expires_at, updated_at, new_hold, new_line)),
        counted AS (
            UPDATE skus s SET held = s.held + v_delta
            WHERE s.tenant_id = p_tenant AND s.sku = p_sku AND v_delta <> 0),
        new_holds AS (
            INSERT INTO reservations (tenant_id, sku, cart_id, quantity, expires_at)
            SELECT p_tenant, p_sku, req.cart_id, req.quantity, req.expires_at
            FROM req WHERE req.new_hold)
        INSERT INTO cart_lines (tenant_id, cart_id, sku, quantity)
        SELECT p_tenant, req.cart_id, p_sku, req.quantity FROM req WHERE req.new_line;
        -- Each cart's clock, and the quantity of a hold or a line the cart
        -- already had: one statement a row, by its primary key.
        FOR v_i IN 1 .. cardinality(v_granted_carts) LOOP
            UPDATE carts c SET doc = jsonb_set(c.doc, '{updated_at}', v_granted_clocks[v_i])
            WHERE c.tenant_id = p_tenant AND c.id = v_granted_carts[v_i];
            IF NOT v_granted_new_holds[v_i] THEN
                UPDATE reservations r
                SET quantity = v_granted_quantities[v_i], expires_at = v_granted_expiries[v_i]
                WHERE r.tenant_id = p_tenant AND r.sku = p_sku AND r.cart_id = v_granted_carts[v_i];
            END IF;
            IF NOT v_granted_new_lines[v_i] THEN
                UPDATE cart_lines l SET quantity = v_granted_quantities[v_i]
                WHERE l.tenant_id = p_tenant AND l.cart_id = v_granted_carts[v_i] AND l.sku = p_sku;
            END IF;
        END LOOP;
    END IF;

    RETURN QUERY
    SELECT v_outcomes[i],
           v_docs[i],
           CASE WHEN v_docs[i] IS NULL THEN NULL ELSE v_items[i] END,
           v_available[i],
           CASE WHEN v_outcomes[i] = 'currency' THEN v_currency END
    FROM generate_series(1, v_n) AS i
    ORDER BY i;
END
$$;

REVOKE ALL ON FUNCTION commerce_set_lines(text, text, uuid[], integer[], integer[], integer[], timestamptz[], timestamptz, jsonb[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION commerce_set_lines(text, text, uuid[], integer[], integer[], integer[], timestamptz[], timestamptz, jsonb[]) TO commerce_app;

