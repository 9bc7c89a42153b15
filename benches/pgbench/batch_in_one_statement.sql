-- A sketch of commerce_set_line_batch (migration 0013) with fewer
-- statements a call, measured by batch.sh beside the function itself
-- (benches/README, "Fewer statements per batch call"); not a migration.
--
-- Migration 0013 decides each new line of a batch by its own conditional
-- counter update and then writes the holds, the lines and the carts'
-- clocks with three more statements, one of them a nested call: 8 + n
-- statements for n such requests. Here one statement decides and writes
-- them all: one update of their SKUs' counters (the SKUs probed with an
-- array of keys), and in the same statement the granted requests' holds,
-- lines and carts' clocks; 5 statements whatever n. Every other request
-- runs commerce_set_line afterwards, as in 0013.
--
-- Two differences from 0013 would need care before it could become a
-- migration: its SKUs are locked in the order of the key's collation (the
-- database's), not in the "C" order the effects of a checkout follow, and
-- the requests that run alone lock theirs after the others.
--
-- The carts are written by key, not by the row ids their locks gave: with
-- "ctid = ANY (...)", a generic plan made while the carts table was small
-- read every cart of the tenant and compared each one's row id with the
-- list (1,036 µs of busy time a reservation in the reservation bench).
CREATE FUNCTION commerce_set_line_batch_in_one_statement(
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
-- aggregate, an array of keys, or one statement a row), as in
-- commerce_set_lines: a join could get a generic plan that reads every
-- cart of the tenant on a table whose statistics are stale. An array of
-- keys, likewise, could be read with a scan of the whole table (or a
-- bitmap of it, which locks the SKUs in the order of their pages, not of
-- their keys): neither is allowed.
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
SET enable_bitmapscan = off
AS $$
DECLARE
    v_n integer := cardinality(p_carts);
    v_locked uuid[];
    v_locked_docs jsonb[];
    v_locked_open boolean[];
    v_docs jsonb[] := array_fill(NULL::jsonb, ARRAY[v_n]);
    v_items jsonb[];
    v_counts integer[];
    v_has_line boolean[];
    v_outcomes text[] := array_fill(NULL::text, ARRAY[v_n]);
    v_available bigint[] := array_fill(NULL::bigint, ARRAY[v_n]);
    v_priced_in text[] := array_fill(NULL::text, ARRAY[v_n]);
    -- The requests the counter alone decides, in the batch's order.
    v_new integer[] := '{}';
    v_new_skus text[] := '{}';
    v_new_carts uuid[] := '{}';
    v_granted text[];
    v_written integer;
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
    SELECT array_agg(c.id ORDER BY c.id),
           array_agg(k.doc ORDER BY c.id), array_agg(k.open ORDER BY c.id)
    INTO v_locked, v_locked_docs, v_locked_open
    FROM (SELECT DISTINCT c.id FROM unnest(p_carts) AS c(id) ORDER BY c.id) AS c
    CROSS JOIN LATERAL (SELECT x.doc, x.checked_out_order IS NULL AS open
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

    -- Each request's cart as locked, and whether the counter alone decides
    -- it: a new line on an open cart within its limits, its cart and its
    -- SKU each once in the batch.
    FOR v_i IN 1 .. v_n LOOP
        v_position := array_position(v_locked, p_carts[v_i]);
        v_docs[v_i] := v_locked_docs[v_position];
        IF v_docs[v_i] IS NOT NULL AND v_locked_open[v_position]
           AND NOT v_has_line[v_i] AND p_quantities[v_i] > 0
           AND p_quantities[v_i] <= p_max_units[v_i]
           AND v_counts[v_i] < p_max_lines[v_i]
           AND array_position(p_carts, p_carts[v_i]) = v_i
           AND array_position(p_carts, p_carts[v_i], v_i + 1) IS NULL
           AND array_position(p_skus, p_skus[v_i]) = v_i
           AND array_position(p_skus, p_skus[v_i], v_i + 1) IS NULL THEN
            v_new := v_new || v_i;
            v_new_skus := v_new_skus || p_skus[v_i];
            v_new_carts := v_new_carts || p_carts[v_i];
        END IF;
    END LOOP;

    -- The counter's conditional update for each of them (as commerce_hold
    -- does, with no current hold to replace), and for those it grants,
    -- their holds, their lines (in the batch's order) and their carts'
    -- clocks (the carts are the batch's own, locked, and touched by no
    -- other request of it).
    IF cardinality(v_new) > 0 THEN
        WITH granted AS (
            UPDATE skus s
            SET held = s.held + p_quantities[v_new[array_position(v_new_skus, s.sku)]]
            WHERE s.tenant_id = p_tenant AND s.sku = ANY(v_new_skus)
              AND s.product_id IS NOT NULL
              AND s.currency = v_docs[v_new[array_position(v_new_skus, s.sku)]]->>'currency'
              AND EXISTS (SELECT 1 FROM products p
                  WHERE p.tenant_id = p_tenant AND p.id = s.product_id AND p.published)
              AND s.on_hand - s.held >= p_quantities[v_new[array_position(v_new_skus, s.sku)]]
            RETURNING v_new[array_position(v_new_skus, s.sku)] AS i),
        holds AS (
            INSERT INTO reservations (tenant_id, sku, cart_id, quantity, expires_at)
            SELECT p_tenant, p_skus[g.i], p_carts[g.i], p_quantities[g.i], p_expires_at[g.i]
            FROM granted g),
        lines AS (
            INSERT INTO cart_lines (tenant_id, cart_id, sku, quantity)
            SELECT p_tenant, p_carts[g.i], p_skus[g.i], p_quantities[g.i]
            FROM granted g ORDER BY g.i),
        clocks AS (
            UPDATE carts c
            SET doc = jsonb_set(v_docs[v_new[array_position(v_new_carts, c.id)]],
                '{updated_at}', p_updated_at[v_new[array_position(v_new_carts, c.id)]])
            WHERE c.tenant_id = p_tenant AND c.id = ANY(v_new_carts)
              AND v_new[array_position(v_new_carts, c.id)] IN (SELECT g.i FROM granted g)
            RETURNING 1)
        SELECT (SELECT array_agg(p_skus[g.i]) FROM granted g), (SELECT count(*) FROM clocks)
        INTO v_granted, v_written;
        IF coalesce(cardinality(v_granted), 0) <> v_written THEN
            RAISE EXCEPTION 'commerce_set_line_batch_in_one_statement: % of % carts written',
                v_written, coalesce(cardinality(v_granted), 0);
        END IF;
        FOR v_i IN SELECT unnest(v_new) LOOP
            IF p_skus[v_i] = ANY(v_granted) THEN
                v_outcomes[v_i] := 'ok';
            END IF;
        END LOOP;
    END IF;

    -- Every other request, in SKU order: as a reservation alone.
    FOR v_i IN
        SELECT s.i FROM generate_subscripts(p_skus, 1) AS s(i)
        WHERE v_outcomes[s.i] IS NULL
        ORDER BY p_skus[s.i] COLLATE "C", s.i
    LOOP
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

    RETURN QUERY
    SELECT i, v_outcomes[i], v_docs[i],
           CASE WHEN v_docs[i] IS NULL THEN NULL ELSE v_items[i] END,
           v_available[i], v_priced_in[i]
    FROM generate_series(1, v_n) AS i
    ORDER BY i;
END
$$;

GRANT EXECUTE ON FUNCTION commerce_set_line_batch_in_one_statement(text, text[], uuid[], integer[], integer[], integer[], timestamptz[], timestamptz[], jsonb[]) TO commerce_app;
