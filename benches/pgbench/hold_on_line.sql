-- A sketch of a reservation that carries its hold on the cart line: a
-- lines table with the hold's expiry and a partial index of the live
-- holds beside its key, no hold row, no new cart version. Only the path
-- that grants is written out (no reclaim, no exact refusal): it measures
-- what a granted reservation costs, it is not a store.
CREATE TABLE lines_with_holds (
    tenant_id  text        NOT NULL,
    cart_id    uuid        NOT NULL,
    sku        text        NOT NULL,
    quantity   integer     NOT NULL CHECK (quantity > 0),
    expires_at timestamptz,
    position   bigint      GENERATED ALWAYS AS IDENTITY,
    PRIMARY KEY (tenant_id, cart_id, sku)
);
CREATE INDEX lines_with_holds_live ON lines_with_holds (tenant_id, sku, expires_at)
    INCLUDE (quantity, cart_id) WHERE expires_at IS NOT NULL;
ALTER TABLE lines_with_holds ENABLE ROW LEVEL SECURITY;
ALTER TABLE lines_with_holds FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON lines_with_holds
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
GRANT SELECT, INSERT, UPDATE, DELETE ON lines_with_holds TO commerce_app;

CREATE FUNCTION set_line_hold_on_line(
    p_tenant text, p_cart uuid, p_sku text, p_quantity integer,
    p_expires_at timestamptz, p_updated_at jsonb, p_write_clock boolean)
RETURNS text
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_doc jsonb;
    v_items jsonb;
    v_count integer;
    v_has_line boolean;
    v_old integer;
BEGIN
    PERFORM set_config('app.tenant_id', p_tenant, true);
    SELECT c.doc INTO v_doc FROM carts c
    WHERE c.tenant_id = p_tenant AND c.id = p_cart FOR UPDATE;
    IF NOT FOUND THEN
        RETURN 'no_cart';
    END IF;
    SELECT COALESCE(jsonb_agg(jsonb_build_array(l.sku, l.quantity) ORDER BY l.position), '[]'::jsonb),
           count(*)::integer,
           COALESCE(bool_or(l.sku = p_sku), false),
           COALESCE(max(l.quantity) FILTER (WHERE l.sku = p_sku AND l.expires_at IS NOT NULL), 0)
    INTO v_items, v_count, v_has_line, v_old
    FROM lines_with_holds l WHERE l.tenant_id = p_tenant AND l.cart_id = p_cart;
    UPDATE skus s SET held = s.held - v_old + p_quantity
    WHERE s.tenant_id = p_tenant AND s.sku = p_sku
      AND s.product_id IS NOT NULL AND s.currency = v_doc->>'currency'
      AND EXISTS (SELECT 1 FROM products p
          WHERE p.tenant_id = p_tenant AND p.id = s.product_id AND p.published)
      AND s.on_hand - (s.held - v_old) >= p_quantity;
    IF NOT FOUND THEN
        RETURN 'insufficient';
    END IF;
    IF v_has_line THEN
        UPDATE lines_with_holds l SET quantity = p_quantity, expires_at = p_expires_at
        WHERE l.tenant_id = p_tenant AND l.cart_id = p_cart AND l.sku = p_sku;
    ELSE
        INSERT INTO lines_with_holds (tenant_id, cart_id, sku, quantity, expires_at)
        VALUES (p_tenant, p_cart, p_sku, p_quantity, p_expires_at);
    END IF;
    IF p_write_clock THEN
        UPDATE carts c SET doc = jsonb_set(c.doc, '{updated_at}', p_updated_at)
        WHERE c.tenant_id = p_tenant AND c.id = p_cart;
    END IF;
    RETURN 'ok';
END
$$;
GRANT EXECUTE ON FUNCTION set_line_hold_on_line TO commerce_app;
