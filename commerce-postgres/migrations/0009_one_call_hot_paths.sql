-- One round trip for the hot paths: a reservation, and what pricing reads.
--
-- 1. One reservation, one round trip.
--
-- CartStore::set_line on the single-statement and grouped strategies (and
-- every strategy's removal of a line) is one call of this function, sent
-- as a statement of its own outside any explicit transaction: the call is
-- its transaction, so the store pays one round trip and one commit for a
-- reservation instead of BEGIN, the cart row, its lines, the write and
-- COMMIT.
--
-- The function pins the tenant itself (set_config(..., true) lasts until
-- the end of the call's transaction) and runs as its caller (SECURITY
-- INVOKER, the default), so row-level security applies to every statement
-- in it as it does to the store's own.
--
-- Under read committed every statement of a volatile function takes a
-- fresh snapshot: the cart's lines are read after its row lock is granted,
-- so the line count checked is the one this call adds to.
--
-- It decides and writes; the store builds every answer from the cart as it
-- was locked (cart_doc, cart_items) with commerce-core's own code:
--   'ok'           the line is set (the store applies Cart::put_line to
--                  the cart as locked: the same change this call stored);
--   'no_cart'      no such cart;
--   'cart'         the cart refuses the change (checked out, or past the
--                  cart limits): the store runs Cart::ensure_open and
--                  CartLimits::check on it for the exact error;
--   'no_sku'       no published product has the SKU;
--   'currency'     the SKU is priced in priced_in, not the cart's currency;
--   'insufficient' the stock does not cover it: available is what other
--                  carts and orders leave (on hand less their live holds).
-- Nothing is written unless the outcome is 'ok'.
-- The counter step of a reservation: the SKU's counter moves by the
-- difference to the cart's current hold, only if a published product has
-- the SKU in the cart's currency and the stock covers it. True if it moved.
-- The cart's current hold is read FOR UPDATE, so a sweep or a reclaim
-- cannot delete it (and lower the counter) before the counter moves; it
-- also keeps the lock order of every path: reservation rows before SKU rows.
CREATE FUNCTION commerce_hold(
    p_tenant text, p_cart uuid, p_sku text, p_quantity integer, p_currency text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_old integer;
BEGIN
    SELECT COALESCE((SELECT r.quantity FROM reservations r
        WHERE r.tenant_id = p_tenant AND r.sku = p_sku AND r.cart_id = p_cart
        FOR UPDATE), 0)
    INTO v_old;
    UPDATE skus s SET held = s.held - v_old + p_quantity
    WHERE s.tenant_id = p_tenant AND s.sku = p_sku
      AND s.product_id IS NOT NULL AND s.currency = p_currency
      AND EXISTS (SELECT 1 FROM products p
          WHERE p.tenant_id = p_tenant AND p.id = s.product_id AND p.published)
      AND s.on_hand - (s.held - v_old) >= p_quantity;
    RETURN FOUND;
END
$$;

CREATE FUNCTION commerce_set_line(
    p_tenant text,
    p_cart uuid,
    p_sku text,
    p_quantity integer,
    p_max_lines integer,
    p_max_units integer,
    p_expires_at timestamptz,
    p_now timestamptz,
    p_updated_at jsonb,
    OUT outcome text,
    OUT cart_doc jsonb,
    OUT cart_items jsonb,
    OUT available bigint,
    OUT priced_in text)
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_checked_out uuid;
    v_count integer;
    v_has_line boolean;
    v_currency text;
    v_on_hand integer;
    v_held boolean;
BEGIN
    PERFORM set_config('app.tenant_id', p_tenant, true);

    SELECT c.doc, c.checked_out_order INTO cart_doc, v_checked_out
    FROM carts c WHERE c.tenant_id = p_tenant AND c.id = p_cart
    FOR UPDATE;
    IF NOT FOUND THEN
        outcome := 'no_cart';
        RETURN;
    END IF;

    SELECT COALESCE(jsonb_agg(jsonb_build_array(l.sku, l.quantity) ORDER BY l.position), '[]'::jsonb),
           count(*)::integer,
           COALESCE(bool_or(l.sku = p_sku), false)
    INTO cart_items, v_count, v_has_line
    FROM cart_lines l WHERE l.tenant_id = p_tenant AND l.cart_id = p_cart;

    IF v_checked_out IS NOT NULL
       OR (p_quantity > 0
           AND (p_quantity > p_max_units OR (NOT v_has_line AND v_count >= p_max_lines))) THEN
        outcome := 'cart';
        RETURN;
    END IF;

    IF p_quantity = 0 THEN
        PERFORM 1 FROM skus s
        WHERE s.tenant_id = p_tenant AND s.sku = p_sku AND s.product_id IS NOT NULL;
        IF NOT FOUND THEN
            outcome := 'no_sku';
            RETURN;
        END IF;
        -- The hold goes back to the SKU's counter (reservation row before
        -- SKU row: the lock order of every path).
        WITH gone AS (
            DELETE FROM reservations r
            WHERE r.tenant_id = p_tenant AND r.sku = p_sku AND r.cart_id = p_cart
            RETURNING r.quantity)
        UPDATE skus s SET held = s.held - (SELECT sum(g.quantity) FROM gone g)
        WHERE s.tenant_id = p_tenant AND s.sku = p_sku AND EXISTS (SELECT 1 FROM gone);
        DELETE FROM cart_lines l
        WHERE l.tenant_id = p_tenant AND l.cart_id = p_cart AND l.sku = p_sku;
    ELSE
        v_currency := cart_doc->>'currency';
        v_held := commerce_hold(p_tenant, p_cart, p_sku, p_quantity, v_currency);
        IF NOT v_held THEN
            -- Refused: reclaim the SKU's lapsed holds and allocations, then
            -- try once more. A refusal changes nothing, so should the second
            -- attempt fail too, the reclaim is undone with it (the block is
            -- a subtransaction, entered only on this path).
            BEGIN
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
                v_held := commerce_hold(p_tenant, p_cart, p_sku, p_quantity, v_currency);
                IF NOT v_held THEN
                    RAISE EXCEPTION USING ERRCODE = 'CMRFS', MESSAGE = 'refused after the reclaim';
                END IF;
            EXCEPTION WHEN SQLSTATE 'CMRFS' THEN
                v_held := false;
            END;
        END IF;

        IF NOT v_held THEN
            SELECT s.on_hand, s.currency INTO v_on_hand, priced_in
            FROM skus s
            WHERE s.tenant_id = p_tenant AND s.sku = p_sku
              AND EXISTS (SELECT 1 FROM products p
                  WHERE p.tenant_id = p_tenant AND p.id = s.product_id AND p.published);
            IF NOT FOUND THEN
                outcome := 'no_sku';
            ELSIF priced_in IS DISTINCT FROM v_currency THEN
                outcome := 'currency';
            ELSE
                outcome := 'insufficient';
                available := v_on_hand
                    - (SELECT COALESCE(sum(r.quantity), 0)::bigint FROM reservations r
                       WHERE r.tenant_id = p_tenant AND r.sku = p_sku
                         AND r.expires_at > p_now AND r.cart_id <> p_cart)
                    - (SELECT COALESCE(sum(a.quantity), 0)::bigint FROM allocations a
                       WHERE a.tenant_id = p_tenant AND a.sku = p_sku AND a.expires_at > p_now);
            END IF;
            RETURN;
        END IF;

        INSERT INTO reservations (tenant_id, sku, cart_id, quantity, expires_at)
        VALUES (p_tenant, p_sku, p_cart, p_quantity, p_expires_at)
        ON CONFLICT (tenant_id, sku, cart_id)
        DO UPDATE SET quantity = EXCLUDED.quantity, expires_at = EXCLUDED.expires_at;
        INSERT INTO cart_lines (tenant_id, cart_id, sku, quantity)
        VALUES (p_tenant, p_cart, p_sku, p_quantity)
        ON CONFLICT (tenant_id, cart_id, sku) DO UPDATE SET quantity = EXCLUDED.quantity;
    END IF;

    UPDATE carts c SET doc = jsonb_set(c.doc, '{updated_at}', p_updated_at)
    WHERE c.tenant_id = p_tenant AND c.id = p_cart;
    outcome := 'ok';
END
$$;

REVOKE ALL ON FUNCTION commerce_hold(text, uuid, text, integer, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION commerce_hold(text, uuid, text, integer, text) TO commerce_app;
REVOKE ALL ON FUNCTION commerce_set_line(text, uuid, text, integer, integer, integer, timestamptz, timestamptz, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION commerce_set_line(text, uuid, text, integer, integer, integer, timestamptz, timestamptz, jsonb) TO commerce_app;

-- 2. What pricing a cart reads (PricingStore::pricing_read), in one call and
-- one snapshot: the cart's document and lines, the settings, each line's
-- product in line order (NULL where no product has its SKU), every
-- promotion in priority order, and the usage of those promotions, in
-- total and by the cart's customer where the cart names one (each a probe
-- of the usage table's key per promotion). The store keeps the usage of
-- the limited promotions only. A read: it locks nothing.
CREATE FUNCTION commerce_pricing_read(
    p_tenant text,
    p_cart uuid,
    OUT cart_doc jsonb,
    OUT cart_items jsonb,
    OUT settings_doc jsonb,
    OUT products jsonb,
    OUT promotions jsonb,
    OUT usage_totals jsonb,
    OUT customer_usage jsonb)
LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    PERFORM set_config('app.tenant_id', p_tenant, true);
    SELECT c.doc,
        COALESCE((SELECT jsonb_agg(jsonb_build_array(l.sku, l.quantity) ORDER BY l.position)
            FROM cart_lines l WHERE l.tenant_id = p_tenant AND l.cart_id = p_cart), '[]'::jsonb),
        (SELECT st.doc FROM shop_settings st WHERE st.tenant_id = p_tenant),
        COALESCE((SELECT jsonb_agg(p.doc ORDER BY l.position)
            FROM cart_lines l
            LEFT JOIN skus s ON s.tenant_id = l.tenant_id AND s.sku = l.sku
            LEFT JOIN products p ON p.tenant_id = s.tenant_id AND p.id = s.product_id
            WHERE l.tenant_id = p_tenant AND l.cart_id = p_cart), '[]'::jsonb),
        COALESCE((SELECT jsonb_agg(pr.doc ORDER BY pr.priority, pr.id COLLATE "C")
            FROM promotions pr WHERE pr.tenant_id = p_tenant), '[]'::jsonb),
        COALESCE((SELECT jsonb_agg(jsonb_build_array(u.promotion_id, u.total))
            FROM promotions pr
            JOIN promotion_usage u ON u.tenant_id = pr.tenant_id AND u.promotion_id = pr.id
            WHERE pr.tenant_id = p_tenant), '[]'::jsonb),
        COALESCE((SELECT jsonb_agg(jsonb_build_array(cu.promotion_id, cu.used))
            FROM promotions pr
            JOIN promotion_customer_usage cu ON cu.tenant_id = pr.tenant_id AND cu.promotion_id = pr.id
            WHERE pr.tenant_id = p_tenant AND cu.customer_id = c.doc->'customer'->>'id'), '[]'::jsonb)
    INTO cart_doc, cart_items, settings_doc, products, promotions, usage_totals, customer_usage
    FROM carts c WHERE c.tenant_id = p_tenant AND c.id = p_cart;
END
$$;

REVOKE ALL ON FUNCTION commerce_pricing_read(text, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION commerce_pricing_read(text, uuid) TO commerce_app;
