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
-- The documents of carts a group holds locked, written by the row ids the
-- locks gave (a locked row cannot move): a TID scan. Its own function so
-- that the planner may use nothing else here (any other scan is turned
-- off for it alone): given an index on the tenant, a generic plan on a
-- table it believes small reads every cart of the tenant and filters
-- instead. Plans made once per connection, as for every PL/pgSQL function.
CREATE FUNCTION commerce_write_carts(p_tenant text, p_rows tid[], p_ids uuid[], p_docs jsonb[])
RETURNS tid[]
LANGUAGE plpgsql VOLATILE
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
SET enable_indexscan = off
SET enable_indexonlyscan = off
SET enable_bitmapscan = off
SET enable_hashjoin = off
SET enable_mergejoin = off
AS $$
DECLARE
    v_rows tid[];
BEGIN
    -- The new row ids, in the order given: the next write of the same carts
    -- in this transaction finds them there (an update moves a row).
    WITH written AS (
        UPDATE carts c SET doc = g.doc
        FROM unnest(p_rows, p_ids, p_docs) WITH ORDINALITY AS g(row_id, id, doc, ord)
        WHERE c.ctid = g.row_id AND c.id = g.id AND c.tenant_id = p_tenant
        RETURNING c.ctid AS row_id, g.ord)
    SELECT array_agg(w.row_id ORDER BY w.ord) INTO v_rows FROM written w;
    IF cardinality(p_rows) > 0 AND cardinality(v_rows) IS DISTINCT FROM cardinality(p_rows) THEN
        RAISE EXCEPTION 'commerce_write_carts: % of % carts written',
            coalesce(cardinality(v_rows), 0), cardinality(p_rows);
    END IF;
    RETURN v_rows;
END
$$;

REVOKE ALL ON FUNCTION commerce_write_carts(text, tid[], uuid[], jsonb[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION commerce_write_carts(text, tid[], uuid[], jsonb[]) TO commerce_app;

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
    v_locked_rows tid[];
    v_locked_docs jsonb[];
    v_rows tid[] := array_fill(NULL::tid, ARRAY[v_n]);
    v_touched integer[];
    v_touched_rows tid[];
    v_touched_ids uuid[];
    v_touched_docs jsonb[];
    v_locked_open boolean[];
    v_docs jsonb[] := array_fill(NULL::jsonb, ARRAY[v_n]);
    v_open boolean[] := array_fill(NULL::boolean, ARRAY[v_n]);
    v_line_carts uuid[];
    v_line_items jsonb[];
    v_line_counts integer[];
    v_line_has boolean[];
    v_items jsonb[] := array_fill(NULL::jsonb, ARRAY[v_n]);
    v_counts integer[] := array_fill(NULL::integer, ARRAY[v_n]);
    v_has_line boolean[] := array_fill(NULL::boolean, ARRAY[v_n]);
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
    v_granted_new_holds boolean[];
    v_granted_new_lines boolean[];
BEGIN
    PERFORM set_config('app.tenant_id', p_tenant, true);

    -- 1. The carts, locked in id order (a locking read answers with the
    -- row as locked, the latest version), then their lines (a statement
    -- after the locks: a fresh snapshot).
    SELECT array_agg(c.id ORDER BY c.id), array_agg(k.ctid ORDER BY c.id),
           array_agg(k.doc ORDER BY c.id), array_agg(k.open ORDER BY c.id)
    INTO v_locked, v_locked_rows, v_locked_docs, v_locked_open
    FROM (SELECT DISTINCT c.id FROM unnest(p_carts) AS c(id) ORDER BY c.id) AS c
    CROSS JOIN LATERAL (SELECT x.ctid, x.doc, x.checked_out_order IS NULL AS open
        FROM carts x WHERE x.tenant_id = p_tenant AND x.id = c.id FOR UPDATE) AS k;

    SELECT array_agg(x.cart_id), array_agg(x.items), array_agg(x.n), array_agg(x.has_line)
    INTO v_line_carts, v_line_items, v_line_counts, v_line_has
    FROM (SELECT l.cart_id,
                 jsonb_agg(jsonb_build_array(l.sku, l.quantity) ORDER BY l.position) AS items,
                 count(*)::integer AS n,
                 bool_or(l.sku = p_sku) AS has_line
          FROM unnest(p_carts) AS c(id)
          CROSS JOIN LATERAL (SELECT y.cart_id, y.sku, y.quantity, y.position FROM cart_lines y
              WHERE y.tenant_id = p_tenant AND y.cart_id = c.id OFFSET 0) AS l
          GROUP BY l.cart_id) AS x;

    FOR v_i IN 1 .. v_n LOOP
        v_position := array_position(v_locked, p_carts[v_i]);
        v_docs[v_i] := v_locked_docs[v_position];
        v_rows[v_i] := v_locked_rows[v_position];
        v_open[v_i] := v_locked_open[v_position];
        v_position := array_position(v_line_carts, p_carts[v_i]);
        v_items[v_i] := COALESCE(v_line_items[v_position], '[]'::jsonb);
        v_counts[v_i] := COALESCE(v_line_counts[v_position], 0);
        v_has_line[v_i] := COALESCE(v_line_has[v_position], false);
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

    -- The clocks of the carts that passed, before the SKU's row is locked,
    -- so that what the group writes under that lock is only the holds, the
    -- lines and the counter; put back below for a request refused after.
    v_touched := '{}';
    v_touched_rows := '{}';
    v_touched_ids := '{}';
    v_touched_docs := '{}';
    FOR v_i IN 1 .. v_n LOOP
        IF v_outcomes[v_i] IS NULL THEN
            v_touched := array_append(v_touched, v_i);
            v_touched_rows := array_append(v_touched_rows, v_rows[v_i]);
            v_touched_ids := array_append(v_touched_ids, p_carts[v_i]);
            v_touched_docs := array_append(v_touched_docs,
                jsonb_set(v_docs[v_i], '{updated_at}', p_updated_at[v_i]));
        END IF;
    END LOOP;
    v_touched_rows := commerce_write_carts(p_tenant, v_touched_rows, v_touched_ids, v_touched_docs);
    FOR v_i IN 1 .. cardinality(v_touched) LOOP
        v_rows[v_touched[v_i]] := v_touched_rows[v_i];
    END LOOP;

    LOOP
        -- 3. The carts' current holds of the SKU, then the SKU's row. (Read
        -- again after a reclaim, which may have taken a lapsed hold of the
        -- group's own carts: a transaction's own locks do not stop it.) A
        -- cart holds a SKU only with a line of it, so only the carts with
        -- the line are probed; should a hold without its line exist, the
        -- group's insert of it fails, and each request runs alone.
        SELECT array_agg(h.cart_id), array_agg(h.quantity)
        INTO v_hold_carts, v_hold_quantities
        FROM unnest(p_carts, v_has_line) AS c(id, has_line)
        CROSS JOIN LATERAL (SELECT x.cart_id, x.quantity FROM reservations x
            WHERE c.has_line AND x.tenant_id = p_tenant AND x.sku = p_sku AND x.cart_id = c.id
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
                v_granted_expiries, v_granted_new_holds, v_granted_new_lines)
                AS g(cart_id, quantity, expires_at, new_hold, new_line)),
        counted AS (
            UPDATE skus s SET held = s.held + v_delta
            WHERE s.tenant_id = p_tenant AND s.sku = p_sku AND v_delta <> 0),
        new_holds AS (
            INSERT INTO reservations (tenant_id, sku, cart_id, quantity, expires_at)
            SELECT p_tenant, p_sku, req.cart_id, req.quantity, req.expires_at
            FROM req WHERE req.new_hold)
        INSERT INTO cart_lines (tenant_id, cart_id, sku, quantity)
        SELECT p_tenant, req.cart_id, p_sku, req.quantity FROM req WHERE req.new_line;
        -- The quantity of a hold or a line the cart already had: one
        -- statement a row, by its primary key.
        FOR v_i IN 1 .. cardinality(v_granted_carts) LOOP
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

    -- A request refused after its cart's checks leaves the cart as it was
    -- (locked since it was read, so the document read is the document).
    IF 'no_sku' = ANY(v_outcomes) OR 'currency' = ANY(v_outcomes)
       OR 'insufficient' = ANY(v_outcomes) THEN
        PERFORM commerce_write_carts(p_tenant,
            array_agg(v_rows[i] ORDER BY i), array_agg(p_carts[i] ORDER BY i),
            array_agg(v_docs[i] ORDER BY i))
        FROM generate_series(1, v_n) AS i
        WHERE v_outcomes[i] IN ('no_sku', 'currency', 'insufficient');
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

